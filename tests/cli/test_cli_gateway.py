"""`demand-control events send` ends each error a user can meet in one clear line on stderr and a non-zero
exit, never a traceback: a malformed events file, a gateway that is down, a secret that is not a secret, and
a secret the gateway does not accept. Run as the real command (a process), so what is checked is what a user
sees on the terminal.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from demand_control.gateway import create_app
from demand_control.resources import Warehouse
from tests.asgi_server import serving

SECRET = "whsec_c2VjcmV0LWZvci10aGUtZ2F0ZXdheS10ZXN0cw=="
OTHER_SECRET = "whsec_b2xkLXNlY3JldC1iZWZvcmUtcm90YXRpb24="
SAMPLE = Path(__file__).parents[2] / "demand_control" / "gateway" / "samples" / "supplier_delay.json"


def events_send(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEMAND_CONTROL_WEBHOOK_SECRETS_")}
    return subprocess.run([sys.executable, "-m", "demand_control.cli.main", "events", "send", *args],
                          capture_output=True, text=True, env=env, timeout=60)


def _one_clear_line(result: subprocess.CompletedProcess[str], exit_code: int, *words: str) -> str:
    assert result.returncode == exit_code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(("content", "words"), [
    (b"{not json", ("is not JSON", "line 1 column 2")),
    (b"[1, 2]", ("must hold one event object or a list of them", "item 0 is int")),
    (b"\xff\xfe not text", ("is not UTF-8",)),
    (b'[{"webhook_id": 7, "type": "supplier.delay"}]', ("webhook_id that is not a non-empty string",)),
])
def test_a_malformed_events_file_is_one_line_and_exit_1(tmp_path: Path, content: bytes, words: tuple[str, ...]) -> None:
    """Before: json.loads's JSONDecodeError (and UnicodeDecodeError, and a TypeError from signing a
    non-string id) ended in a traceback."""
    path = tmp_path / "events.json"
    path.write_bytes(content)
    _one_clear_line(events_send(str(path), "--source", "supplier-portal", "--secret", SECRET), 1, str(path), *words)


def test_a_gateway_that_is_down_is_one_line_and_exit_1() -> None:
    """Before: httpx.ConnectError ended in a traceback."""
    url = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    _one_clear_line(events_send(str(SAMPLE), "--source", "supplier-portal", "--secret", SECRET, "--url", url), 1,
                    "cannot reach the gateway", url)


@pytest.mark.parametrize("secret", ["whsec_!!not-base64!!", "whsec_"])
def test_a_secret_that_is_not_a_whsec_value_is_one_line_and_exit_2(secret: str) -> None:
    """Before: the base64 decoding error of the signing library ended in a traceback. The secret itself is
    never printed."""
    line = _one_clear_line(events_send(str(SAMPLE), "--source", "supplier-portal", "--secret", secret), 2,
                           "not a valid whsec_<base64> value")
    assert secret not in line.replace("whsec_<base64>", "")


def test_a_secret_the_gateway_refuses_is_one_line_and_exit_1(tmp_path: Path) -> None:
    """Before: the 401 answer was printed as one of the event lines on stdout; now it stops the command with
    the gateway's reason and where the secret comes from."""
    warehouse = Warehouse(home=str(tmp_path))
    warehouse.migrate()
    with serving(create_app(warehouse, secrets={"supplier-portal": [SECRET]})) as url:
        result = events_send(str(SAMPLE), "--source", "supplier-portal", "--secret", OTHER_SECRET, "--url", url)
    _one_clear_line(result, 1, "refused the signature", "no_matching_signature",
                    "DEMAND_CONTROL_WEBHOOK_SECRETS_SUPPLIER_PORTAL")
    assert warehouse.count("inbox_events") == 0


def test_no_secret_at_all_is_one_line_and_exit_2() -> None:
    _one_clear_line(events_send(str(SAMPLE), "--source", "supplier-portal"), 2,
                    "DEMAND_CONTROL_WEBHOOK_SECRETS_SUPPLIER_PORTAL is not set")
