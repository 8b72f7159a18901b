"""The local Tryton server: where a site lives (`TrytonSite`), whether its database exists, starting trytond on
loopback, logging in over JSON-RPC and stopping it again."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

from demand_control.infra.settings import (
    DEFAULT_ERP_PORT,
    ERP_DATABASE_URI_ENV,
    ERP_PASSWORD_ENV,
    ERP_PORT_ENV,
    state_home,
)

DEFAULT_DATABASE = "demand_control"


def _env_port() -> int:
    raw = os.environ.get(ERP_PORT_ENV)
    return int(raw) if raw else DEFAULT_ERP_PORT


@dataclass
class TrytonSite:
    """Where a local Tryton lives: its folder, database, admin credentials and the port it serves on."""

    home: Path = field(default_factory=lambda: state_home() / "tryton")
    database: str = DEFAULT_DATABASE
    login: str = "admin"
    password: str = field(default_factory=lambda: os.environ.get(ERP_PASSWORD_ENV) or "admin")
    port: int = field(default_factory=_env_port)
    # PostgreSQL server URI without a database name, e.g. postgresql://postgres@127.0.0.1:5432/; None: SQLite.
    database_uri: str | None = field(default_factory=lambda: os.environ.get(ERP_DATABASE_URI_ENV) or None)
    host: str = "127.0.0.1"
    template_folder: Path | None = None  # seeded-database cache; default <home>/templates

    def __post_init__(self) -> None:
        self.home = Path(self.home).resolve()
        if self.template_folder is not None:
            self.template_folder = Path(self.template_folder).resolve()

    @property
    def backend(self) -> str:
        return "postgresql" if self.database_uri else "sqlite"

    @property
    def uri(self) -> str:
        return self.database_uri or "sqlite://"

    @property
    def config_path(self) -> Path:
        return self.home / "trytond.conf"

    @property
    def data_folder(self) -> Path:
        return self.home / "data"

    @property
    def sqlite_path(self) -> Path:
        return self.data_folder / f"{self.database}.sqlite"

    @property
    def templates(self) -> Path:
        return self.template_folder or self.home / "templates"

    @property
    def log_path(self) -> Path:
        return self.home / "trytond.log"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def rpc_url(self) -> str:
        return f"{self.url}/{self.database}/rpc/"

    def write_config(self) -> Path:
        """Write `trytond.conf` for this site and return its path."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.data_folder.mkdir(parents=True, exist_ok=True)
        text = (
            "[database]\n"
            f"uri = {self.uri}\n"
            f"path = {self.data_folder}\n"
            "\n[web]\n"
            f"listen = {self.host}:{self.port}\n"
            "\n[session]\n"
            # Planning runs and test sessions hold one session for long stretches between calls.
            "timeout = 86400\n"
        )
        self.config_path.write_text(text)
        return self.config_path


class TrytonSetupError(RuntimeError):
    """The Tryton database could not be created, seeded or served."""


def check_backend(site: TrytonSite) -> None:
    import importlib.util

    # trytond 8's PostgreSQL backend imports psycopg 3; psycopg2 (which the warehouse uses) does not do.
    if site.backend == "postgresql" and importlib.util.find_spec("psycopg") is None:
        raise TrytonSetupError(
            "Tryton on PostgreSQL needs the `psycopg` (version 3) package, which is not installed; "
            f"unset {ERP_DATABASE_URI_ENV} to use SQLite"
        )


def database_exists(site: TrytonSite) -> bool:
    if site.backend == "sqlite":
        return site.sqlite_path.exists() and site.sqlite_path.stat().st_size > 0
    with pg_admin(site) as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (site.database,))
        return cur.fetchone() is not None


def database_location(site: TrytonSite) -> str:
    return str(site.sqlite_path) if site.backend == "sqlite" else _safe_uri(site.uri)


def _safe_uri(uri: str) -> str:
    parts = urlsplit(uri)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return uri


class pg_admin:
    """A psycopg2 cursor on the server's `postgres` database, autocommit (CREATE/DROP DATABASE need it)."""

    def __init__(self, site: TrytonSite):
        self.site = site

    def __enter__(self):
        import psycopg2

        parts = urlsplit(self.site.uri)
        self.conn = psycopg2.connect(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 5432,
            user=parts.username,
            password=parts.password,
            dbname="postgres",
            connect_timeout=10,
        )
        self.conn.autocommit = True
        self.cur = self.conn.cursor()
        return self.cur

    def __exit__(self, *exc) -> None:
        self.cur.close()
        self.conn.close()


def last_lines(text: str, lines: int = 20) -> str:
    return "\n".join((text or "").strip().splitlines()[-lines:])


def rpc_login(client: httpx.Client, site: TrytonSite) -> str:
    """Log in over JSON-RPC and return the `Authorization` header value for later calls."""
    response = client.post(
        site.rpc_url,
        json={"method": "common.db.login", "params": [site.login, {"password": site.password}], "id": 1},
    )
    response.raise_for_status()
    body = response.json()
    if body.get("error"):
        raise TrytonSetupError(f"login to {site.rpc_url} failed: {body['error']}")
    user_id, session = body["result"][:2]
    token = base64.b64encode(f"{site.login}:{user_id}:{session}".encode()).decode()
    return f"Session {token}"


def is_serving(site: TrytonSite, timeout: float = 2.0) -> bool:
    """True when trytond answers a JSON-RPC login for this site's database."""
    try:
        with httpx.Client(timeout=timeout) as client:
            rpc_login(client, site)
        return True
    except (httpx.HTTPError, TrytonSetupError, ValueError, KeyError):
        return False


def serve(site: TrytonSite, *, timeout: float = 60.0) -> subprocess.Popen:
    """Start `trytond -c <conf> -d <db>` on 127.0.0.1:<port> and return once a JSON-RPC login succeeds.

    The server's output goes to `<home>/trytond.log`; if it exits or does not answer within `timeout`
    seconds it is stopped and the error carries the log's tail.
    """
    check_backend(site)
    if not database_exists(site):
        raise TrytonSetupError(f"no Tryton database {site.database!r} at {database_location(site)}: run `demand-control erp init`")
    site.write_config()
    trytond = Path(sys.executable).with_name("trytond")
    env = {**os.environ}
    env.pop("TRYTOND_DATABASE_URI", None)
    log = site.log_path.open("ab")
    log_start = site.log_path.stat().st_size
    proc = subprocess.Popen(
        [str(trytond), "-c", str(site.config_path), "-d", site.database],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,  # Ctrl-C in a foreground `erp serve` is handled by us, not sent twice
    )
    log.close()
    deadline = time.monotonic() + timeout
    last_error = "no answer yet"
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise TrytonSetupError(
                    f"trytond exited with code {proc.returncode} before answering on {site.url}:\n"
                    f"{_log_tail(site, log_start)}"
                )
            try:
                rpc_login(client, site)
                return proc
            except (httpx.HTTPError, TrytonSetupError, ValueError, KeyError) as exc:
                last_error = f"{type(exc).__name__}: {exc}"
            time.sleep(0.2)
    stop(proc)
    raise TrytonSetupError(
        f"trytond did not answer a login on {site.rpc_url} within {timeout:.0f} s ({last_error}):\n"
        f"{_log_tail(site, log_start)}"
    )


def _log_tail(site: TrytonSite, start: int) -> str:
    try:
        with site.log_path.open("rb") as fh:
            fh.seek(start)
            return last_lines(fh.read().decode(errors="replace"))
    except OSError:
        return "(no log)"


def stop(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """Stop a server started by `serve`: SIGTERM, then SIGKILL if it has not exited within `timeout`."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)
