"""`demand-control dashboard`: serves the page at / on loopback until Ctrl-C, which stops it cleanly; a bad
port, a port in use or a missing page is one line on stderr, never a traceback."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from demand_control.cli.main import app

BIN = Path(sys.executable).parent
runner = CliRunner()


def page(home: Path) -> Path:
    path = home / "dashboard" / "kpi_history.html"
    path.parent.mkdir(parents=True)
    path.write_text("<!DOCTYPE html><title>kpis</title><p>history</p>")
    return path


@pytest.mark.parametrize("port", ["-1", "65536", "99999"])
def test_a_bad_port_is_one_line(port: str, tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("DEMAND_CONTROL_HOME", str(tmp_path))
    page(tmp_path)
    result = runner.invoke(app, ["dashboard", "--port", port])
    assert result.exit_code == 2
    assert result.output.strip() == f"error: --port must be a port number from 0 to 65535, got {port}"


def test_no_page_yet_says_how_to_make_one(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("DEMAND_CONTROL_HOME", str(tmp_path))
    result = runner.invoke(app, ["dashboard"])
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
    assert "materialize coordination_kpis" in result.output and str(tmp_path / "dashboard" / "kpi_history.html") in result.output


def test_a_port_in_use_is_one_line(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("DEMAND_CONTROL_HOME", str(tmp_path))
    page(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = runner.invoke(app, ["dashboard", "--port", str(port)])
    assert result.exit_code == 1
    assert result.output.strip() == f"error: cannot listen on 127.0.0.1:{port}: Address already in use"


@pytest.mark.timed_waits
def test_serves_the_page_on_loopback_until_ctrl_c(tmp_path: Path) -> None:
    served = page(tmp_path)
    env = {**os.environ, "DEMAND_CONTROL_HOME": str(tmp_path)}
    server = subprocess.Popen([str(BIN / "demand-control"), "dashboard", "--port", "0"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()
        url = re.search(r"at (http://127\.0\.0\.1:\d+/)", line)
        assert url, line
        assert str(served) in line
        assert httpx.get(url.group(1), timeout=10).text == served.read_text()
        assert httpx.get(url.group(1) + "kpi_history.html", timeout=10).status_code == 200
        assert httpx.get(url.group(1) + "../../etc/passwd", timeout=10).status_code == 404
    finally:
        server.send_signal(signal.SIGINT)
        _, err = server.communicate(timeout=20)
    assert server.returncode == 0 and err.strip() == "stopped"
