"""Encryption in transit where the product listens: `demand-control gateway --ssl-certfile --ssl-keyfile`
serves HTTPS (and nothing in the clear on that port), with a self-signed pair made here for 127.0.0.1;
`events send --cafile` talks to it; a half or mismatched pair is one clear line and exit 2 before anything
listens.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from demand_control.resources import Warehouse

SECRET = "whsec_c2VjcmV0LWZvci10aGUtZ2F0ZXdheS10ZXN0cw=="
SAMPLE = Path(__file__).parents[2] / "demand_control" / "gateway" / "samples" / "supplier_delay.json"


def self_signed_pair(folder: Path, name: str = "gateway") -> tuple[Path, Path]:
    """A P-256 key and a self-signed certificate for 127.0.0.1 (valid for a day around the wall clock: TLS
    checks the real time, whatever the planning clock says)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "demand-control test gateway")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    certfile, keyfile = folder / f"{name}.crt", folder / f"{name}.key"
    certfile.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return certfile, keyfile


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env(tmp_path: Path, request: pytest.FixtureRequest, **extra: str) -> dict[str, str]:
    return {**os.environ, "DEMAND_CONTROL_HOME": str(tmp_path / "home"), "DEMAND_CONTROL_DATABASE_URL": "",
            "DEMAND_CONTROL_WEBHOOK_SECRETS_SUPPLIER_PORTAL": SECRET, "PYTHONDONTWRITEBYTECODE": "",
            # compiled bytecode cached outside the venv, as the other gateway process tests do
            "PYTHONPYCACHEPREFIX": str(request.config.cache.mkdir("gateway-pycache")), **extra}


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "demand_control.cli.main", *args]


@pytest.fixture
def tls_gateway(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[str, Path, Warehouse]]:
    """`demand-control gateway --ssl-certfile … --ssl-keyfile …` on a free port: (https URL, cert, warehouse)."""
    certfile, keyfile = self_signed_pair(tmp_path)
    warehouse = Warehouse(home=str(tmp_path / "home"))
    warehouse.migrate()
    port = _free_port()
    env = _env(tmp_path, request)
    log = (tmp_path / "gateway.log").open("wb")
    proc = subprocess.Popen(_cli("gateway", "--port", str(port), "--no-access-log", "--log-level", "warning",
                                 "--ssl-certfile", str(certfile), "--ssl-keyfile", str(keyfile)),
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"https://127.0.0.1:{port}"
    trust = ssl.create_default_context(cafile=str(certfile))
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "gateway.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "the TLS gateway did not become healthy"
            try:
                if httpx.get(f"{url}/healthz", verify=trust, timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield url, certfile, warehouse
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


def test_the_gateway_serves_https_with_a_certificate_and_key(tls_gateway, tmp_path: Path, request) -> None:
    url, certfile, warehouse = tls_gateway
    # The certificate the client sees is the one configured (verification against it alone succeeds) ...
    assert httpx.get(f"{url}/healthz", verify=ssl.create_default_context(cafile=str(certfile))).json() == {"status": "ok"}
    # ... a client that does not trust it refuses the connection, and nothing is served in the clear.
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{url}/healthz")
    with pytest.raises(httpx.HTTPError):
        httpx.get(url.replace("https://", "http://") + "/healthz", timeout=5)
    # A signed event over HTTPS is stored, sent by the CLI trusting the certificate.
    result = subprocess.run(_cli("events", "send", str(SAMPLE), "--source", "supplier-portal", "--url", url,
                                 "--cafile", str(certfile)),
                            env=_env(tmp_path, request), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and " 202 " in result.stdout, result.stdout + result.stderr
    assert warehouse.count("inbox_events") == 1


def test_a_half_or_mismatched_tls_pair_is_one_line_and_exit_2(tmp_path: Path, request) -> None:
    """Checked before anything listens; the certificate may come from the environment too."""
    certfile, _ = self_signed_pair(tmp_path, "one")
    _, other_key = self_signed_pair(tmp_path, "two")
    only_cert = subprocess.run(_cli("gateway", "--port", str(_free_port())), capture_output=True, text=True,
                               env=_env(tmp_path, request, DEMAND_CONTROL_GATEWAY_SSL_CERTFILE=str(certfile)), timeout=60)
    mismatched = subprocess.run(_cli("gateway", "--port", str(_free_port()), "--ssl-certfile", str(certfile),
                                     "--ssl-keyfile", str(other_key)),
                                capture_output=True, text=True, env=_env(tmp_path, request), timeout=60)
    for result, words in ((only_cert, "TLS needs both --ssl-certfile"), (mismatched, "cannot use the TLS certificate")):
        assert result.returncode == 2, result.stdout + result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], result.stderr
