"""A real trytond on loopback, seeded from a small landscape, for every test that talks to the ERP.

`tryton_server` (session scope) restores the seeded database from a template kept in pytest's cache
(`.pytest_cache/d/tryton`), building it on the first run (about 40 s), then serves it on a free port.
conftest imports the fixture from here.
"""

from __future__ import annotations

import base64
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import httpx
import pandas as pd
import pytest

from demand_control.sample import generate_landscape
from demand_control.sample.tryton import TrytonSite, restore_or_init, serve, stop

TRYTON_AS_OF = date(2026, 11, 23)
TRYTON_LANDSCAPE = {"skus": 12, "locations": 2, "weeks": 60, "seed": 5}


@dataclass
class TrytonServer:
    """A running trytond: where it answers, how to log in, and the landscape it was seeded from."""

    url: str
    database: str
    login: str
    password: str
    frames: dict[str, pd.DataFrame]
    site: TrytonSite

    @property
    def rpc_url(self) -> str:
        return f"{self.url}/{self.database}/rpc/"


class TrytonRpc:
    """A minimal JSON-RPC client for assertions: log in, then `call("model.x.search_read", ...)`."""

    def __init__(self, server: TrytonServer, timeout: float = 30.0):
        self.server = server
        self.client = httpx.Client(timeout=timeout)
        body = self._post({"method": "common.db.login", "params": [server.login, {"password": server.password}]})
        user_id, session = body["result"][:2]
        token = base64.b64encode(f"{server.login}:{user_id}:{session}".encode()).decode()
        self.client.headers["Authorization"] = f"Session {token}"
        self.context = self.call("model.res.user.get_preferences", True, {})

    def _post(self, payload: dict) -> dict:
        response = self.client.post(self.server.rpc_url, json={"id": 1, **payload})
        response.raise_for_status()
        body = response.json()
        if body.get("error"):
            raise AssertionError(f"Tryton error on {payload['method']}: {body['error']}")
        return body

    def call(self, method: str, *params):
        return self._post({"method": method, "params": list(params)})["result"]

    def search_read(self, model: str, domain: list, fields: list[str], context: dict | None = None) -> list[dict]:
        ctx = {**self.context, **(context or {})}
        return self.call(f"model.{model}.search_read", domain, 0, None, None, fields, ctx)

    def close(self) -> None:
        self.client.close()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tryton_frames() -> dict[str, pd.DataFrame]:
    return generate_landscape(as_of=TRYTON_AS_OF, **TRYTON_LANDSCAPE)


# The running server, shared by every definition of the fixture in the session: a test module that imports
# the fixture next to conftest's gets its own fixture definition, and must not start a second server.
_RUNNING: list[TrytonServer] = []


@pytest.fixture(scope="session")
def tryton_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrytonServer]:
    if _RUNNING:
        yield _RUNNING[0]
        return
    frames = tryton_frames()
    cache_dir = Path(request.config.cache.mkdir("tryton"))
    site = TrytonSite(
        home=tmp_path_factory.mktemp("tryton"),
        database="demand_control_test",
        login="admin",
        password="admin",
        port=free_port(),
        database_uri=None,
        template_folder=cache_dir,
    )
    key = "-".join(f"{k}{v}" for k, v in TRYTON_LANDSCAPE.items()) + f"-{TRYTON_AS_OF.isoformat()}"
    restore_or_init(site, frames, cache_key=key)
    proc = serve(site)
    server = TrytonServer(
        url=site.url, database=site.database, login=site.login, password=site.password, frames=frames, site=site
    )
    _RUNNING.append(server)
    try:
        yield server
    finally:
        _RUNNING.clear()
        stop(proc)


@pytest.fixture
def tryton_rpc(tryton_server: TrytonServer) -> Iterator[TrytonRpc]:
    rpc = TrytonRpc(tryton_server)
    try:
        yield rpc
    finally:
        rpc.close()


@contextmanager
def private_tryton(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[TrytonServer]:
    """A private copy of the seeded database, restored from the same cached template and served on its own
    port, for tests that write to it."""
    frames = tryton_frames()
    site = TrytonSite(
        home=tmp_path_factory.mktemp(f"tryton_{name}"), database=f"demand_control_{name}", login="admin", password="admin",
        port=free_port(), database_uri=None, template_folder=request.config.cache.mkdir("tryton"),
    )
    key = "-".join(f"{k}{v}" for k, v in TRYTON_LANDSCAPE.items()) + f"-{TRYTON_AS_OF.isoformat()}"
    restore_or_init(site, frames, cache_key=key)
    proc = serve(site)
    try:
        yield TrytonServer(url=site.url, database=site.database, login=site.login, password=site.password, frames=frames, site=site)
    finally:
        stop(proc)

