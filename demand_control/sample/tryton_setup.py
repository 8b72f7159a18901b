"""Create, seed and serve the local Tryton 8.2 ERP that demand-control reads signals from and writes back to.

`init_database` activates the planning modules in a fresh database (SQLite by default, PostgreSQL when
`DEMAND_CONTROL_ERP_DATABASE_URI` is set), sets up a company with the accounting the modules require and
seeds it from the sample landscape; `restore_or_init` restores a cached seeded copy instead when one exists;
`serve` runs trytond on loopback and waits until a JSON-RPC login succeeds.

Seeding runs trytond in-process, but in a child Python process (`python -m demand_control.sample
.tryton_setup seed ...`): trytond's configuration and pool are process-global, so keeping them out of the
caller (the CLI, pytest, a Dagster run) means two sites never share a half-initialised pool.

Where each canonical key and value lives in Tryton (the extractor maps them back from here):

| canonical | Tryton model.field |
|---|---|
| product.sku | `product.product.code` (= `product.template.code`; no suffix code) |
| product.description | `product.template.name` |
| product.category | `product.template.categories`: the one non-accounting `product.category`, its `name` |
| product.unit | `product.template.default_uom.symbol`, mapped by `UNIT_BY_UOM_SYMBOL` |
| product.unit_cost / unit_price | `product.product.cost_price` / `product.template.list_price` (= the variant's `list_price_used`); both need `company` in the context |
| product.active | `product.template.active` and `product.product.active` (search with `active_test=False`) |
| location.location_id | `stock.location.code` of the `type = 'warehouse'` location; `name` = location.name |
| location.region | the warehouse's `address` (a `party.address` of the company's party): its `subdivision.name` (type region, in country `ZZ`) |
| customer.customer_id | `party.party.code`; the party is in `party.category` "Customers" |
| customer.tier / region | `party.party.categories`: child of "Customers" named the tier; child of "Regions" named the region |
| customer.notify_email, supplier.contact | `party.contact_mechanism.value` with `type = 'email'` |
| supplier.supplier_id | `party.party.code`; the party is in `party.category` "Suppliers" |
| sourcing (sku, location_id, supplier_id) | `purchase.product_supplier`: `product.code`, `code` (= location_id, the receiving DC: Tryton has no warehouse on it), `party.code` |
| sourcing.lead_time_days | `purchase.product_supplier.lead_time` (a timedelta) |
| sourcing.moq / unit_cost | its one `purchase.product_supplier.price`: `quantity` / `unit_price` |
| sourcing.primary | `purchase.product_supplier.sequence` == `PRIMARY_SEQUENCE` (alternates: `ALTERNATE_SEQUENCE`) |
| inventory_position.on_hand | done stock at `as_of` in the warehouse (`product.product` quantity, context `locations=[warehouse]`, `stock_date_end=as_of`); set by one done `stock.inventory` per warehouse dated `as_of` |
| customer_order_line.order_id | `sale.sale.reference` (the sale is confirmed and processed: state `processing`) |
| customer_order_line.line_no | `sale.line.sequence` |
| customer_order_line.customer_id / location_id | `sale.sale.party.code` / `sale.sale.warehouse.code` |
| customer_order_line.qty_open | `sale.line.quantity` |
| customer_order_line.promise_date | `sale.sale.shipping_date`, and the line's `shipping_date` (= its moves' `planned_date`) |
| customer_order_line.priority / status | `sale.line.note`: `priority=<n>` and `status=<status>` lines (`parse_tags`) |
| purchase_order_line.po_id | `purchase.purchase.reference`; `purchase_date` = order_date |
| purchase_order_line.line_no | `purchase.line.sequence`; `purchase.line.product_supplier` is the sourcing lane |
| purchase_order_line.supplier_id / location_id | `purchase.purchase.party.code` / `purchase.purchase.warehouse.code` |
| purchase_order_line.qty_open | `purchase.line.quantity` |
| purchase_order_line.confirmed_date | `purchase.line.delivery_date` when the line's `note` status is confirmed or partial, else none |
| purchase_order_line.expected_date | `stock.move.origin_planned_date` of the line's move (`purchase.line.moves`) once processed; `purchase.line.delivery_date` for draft and quotation purchases |
| purchase_order_line.status | `purchase.line.note` `status=<status>`; Tryton state: draft→draft, sent→quotation, confirmed/partial→processing |
| pipeline_opportunity.opportunity_id | `sale.opportunity.reference` |
| pipeline_opportunity.sku / qty | `sale.opportunity.line`: `product.code` / `quantity` |
| pipeline_opportunity.customer_id | `sale.opportunity.party.code` |
| pipeline_opportunity.probability | `sale.opportunity.conversion_probability` |
| pipeline_opportunity.expected_date | `sale.opportunity.end_date` |
| pipeline_opportunity.stage | `sale.opportunity.description`; Tryton state by `OPPORTUNITY_STATE_BY_STAGE` |
| demand_history (sku, location_id, period_start, qty) | done `stock.move` from the warehouse's storage location to the customer location (`code = 'CUS'`): one move per SKU-location-week with `qty > 0`, `effective_date` = period_start (the Monday), `quantity` = qty |

Over JSON-RPC, pass the user's preferences as the context (`model.res.user.get_preferences(True, {})`, it
carries `company`): without it cost and list prices read as null. Search products with
`active_test=False` to see discontinued ones.

Not represented in Tryton (no field for it): product.substitute_skus, location.type (every warehouse is a DC), supplier
reliability and lead-time mean/spread (lanes carry the lead time), sourcing lead_time_std_days and
pack_size, inventory_position allocated and in_transit. The opening balance that keeps stock from going
negative is one done move per SKU-location from Lost and Found into storage the day before the first
history week.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import numpy as np
import pandas as pd

from demand_control.infra.settings import state_home

PASSWORD_ENV = "DEMAND_CONTROL_ERP_PASSWORD"
PORT_ENV = "DEMAND_CONTROL_ERP_PORT"
DATABASE_URI_ENV = "DEMAND_CONTROL_ERP_DATABASE_URI"
DEFAULT_PORT = 8765
DEFAULT_DATABASE = "demand_control"

# Bump when seeding changes what ends up in the database, so cached templates are not reused.
SCHEMA_VERSION = 2

MODULES: tuple[str, ...] = (
    "sale",
    "purchase",
    "stock",
    "stock_supply",
    "stock_forecast",
    "stock_supply_forecast",
    "purchase_request",
    "sale_opportunity",
)
COMPANY_NAME = "Sample Distributor"
EMPLOYEE_NAME = "Demand Control"
CUSTOMER_CATEGORY = "Customers"
SUPPLIER_CATEGORY = "Suppliers"
REGION_CATEGORY = "Regions"
PRIMARY_SEQUENCE = 1
ALTERNATE_SEQUENCE = 10
CASE_UOM_SYMBOL = "case"
UOM_XML_ID_BY_UNIT: dict[str, str] = {
    "each": "uom_unit",
    "kg": "uom_kilogram",
    "l": "uom_liter",
    "m": "uom_meter",
}
UNIT_BY_UOM_SYMBOL: dict[str, str] = {"u": "each", "kg": "kg", "l": "l", "m": "m", CASE_UOM_SYMBOL: "case"}
OPPORTUNITY_STATE_BY_STAGE: dict[str, str] = {
    "prospecting": "lead",
    "qualification": "opportunity",
    "proposal": "opportunity",
    "negotiation": "opportunity",
    "won": "won",
    "lost": "lost",
}
PURCHASE_STATE_BY_STATUS: dict[str, str] = {
    "draft": "draft",
    "sent": "quotation",
    "confirmed": "processing",
    "partial": "processing",
}


def format_tags(tags: Mapping[str, object]) -> str:
    """The `key=value` lines stored in a Tryton note for values Tryton has no field for."""
    return "\n".join(f"{key}={value}" for key, value in tags.items())


def parse_tags(note: str | None) -> dict[str, str]:
    """Inverse of `format_tags`; lines without `=` (a human's remark) are ignored."""
    tags: dict[str, str] = {}
    for line in (note or "").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            tags[key.strip()] = value.strip()
    return tags


def _env_port() -> int:
    raw = os.environ.get(PORT_ENV)
    return int(raw) if raw else DEFAULT_PORT


@dataclass
class TrytonSite:
    """Where a local Tryton lives: its folder, database, admin credentials and the port it serves on."""

    home: Path = field(default_factory=lambda: state_home() / "tryton")
    database: str = DEFAULT_DATABASE
    login: str = "admin"
    password: str = field(default_factory=lambda: os.environ.get(PASSWORD_ENV) or "admin")
    port: int = field(default_factory=_env_port)
    # PostgreSQL server URI without a database name, e.g. postgresql://postgres@127.0.0.1:5432/; None: SQLite.
    database_uri: str | None = field(default_factory=lambda: os.environ.get(DATABASE_URI_ENV) or None)
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


@dataclass
class InitReport:
    """What `init_database` / `restore_or_init` did and how long each step took (seconds)."""

    database: str
    restored: bool = False
    create_seconds: float = 0.0
    seed_seconds: float = 0.0
    total_seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)


class TrytonSetupError(RuntimeError):
    """The Tryton database could not be created, seeded or served."""


def _check_backend(site: TrytonSite) -> None:
    import importlib.util

    # trytond 8's PostgreSQL backend imports psycopg 3; psycopg2 (which the warehouse uses) does not do.
    if site.backend == "postgresql" and importlib.util.find_spec("psycopg") is None:
        raise TrytonSetupError(
            "Tryton on PostgreSQL needs the `psycopg` (version 3) package, which is not installed; "
            f"unset {DATABASE_URI_ENV} to use SQLite"
        )


def database_exists(site: TrytonSite) -> bool:
    if site.backend == "sqlite":
        return site.sqlite_path.exists() and site.sqlite_path.stat().st_size > 0
    with _pg_admin(site) as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (site.database,))
        return cur.fetchone() is not None


def init_database(
    site: TrytonSite, frames: Mapping[str, pd.DataFrame], *, force: bool = False, cache_key: str | None = None
) -> InitReport:
    """Create the database with `MODULES`, set up the company and seed it from `frames`.

    Refuses to touch an existing database unless `force`. With `cache_key` (SQLite only) the seeded file is
    also kept as a template that `restore_or_init` copies back.
    """
    started = time.perf_counter()
    _check_backend(site)
    site.write_config()
    if database_exists(site):
        if not force:
            raise TrytonSetupError(
                f"Tryton database {site.database!r} already exists ({_where(site)}); "
                "use --force (force=True) to recreate it"
            )
        _drop_database(site)
    report = InitReport(database=site.database)
    t0 = time.perf_counter()
    _create_database(site)
    report.create_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = _run_seed_worker(site, frames)
    report.seed_seconds = time.perf_counter() - t0
    report.counts = result["counts"]
    report.timings = result["timings"]
    if cache_key is not None and site.backend == "sqlite":
        target = _template_path(site, frames, cache_key)
        target.parent.mkdir(parents=True, exist_ok=True)
        # Copy then rename, so a crash mid-copy never leaves a truncated template behind.
        partial = target.with_suffix(".partial")
        shutil.copyfile(site.sqlite_path, partial)
        partial.replace(target)
    report.total_seconds = time.perf_counter() - started
    return report


def restore_or_init(site: TrytonSite, frames: Mapping[str, pd.DataFrame], cache_key: str) -> InitReport:
    """Restore the seeded database from its cached template, or build it (and the template) when absent.

    The template is keyed by `cache_key` (name the landscape parameters), a fingerprint of the frames, the
    admin password's fingerprint (it is stored hashed in the file) and `SCHEMA_VERSION`. PostgreSQL
    databases are always built fresh.
    """
    started = time.perf_counter()
    site.write_config()
    template = _template_path(site, frames, cache_key)
    if site.backend == "sqlite" and template.exists():
        if database_exists(site):
            _drop_database(site)
        partial = site.sqlite_path.with_suffix(".partial")
        shutil.copyfile(template, partial)
        partial.replace(site.sqlite_path)
        return InitReport(database=site.database, restored=True, total_seconds=time.perf_counter() - started)
    return init_database(site, frames, force=True, cache_key=cache_key)


def frames_fingerprint(frames: Mapping[str, pd.DataFrame]) -> str:
    """A short content hash of the landscape, so a template is never reused for different data."""
    digest = hashlib.sha256()
    for name in sorted(frames):
        frame = frames[name]
        digest.update(name.encode())
        digest.update(",".join(map(str, frame.columns)).encode())
        digest.update(pd.util.hash_pandas_object(frame.astype(str), index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]


def _template_path(site: TrytonSite, frames: Mapping[str, pd.DataFrame], cache_key: str) -> Path:
    secret = _password_fingerprint(site)
    safe_key = "".join(c if c.isalnum() or c in "-_." else "_" for c in cache_key)
    return site.templates / f"{safe_key}-{frames_fingerprint(frames)}-{secret}-v{SCHEMA_VERSION}.sqlite"


def _password_fingerprint(site: TrytonSite) -> str:
    """Templates hold the admin password (hashed): one made with another password must not be reused."""
    return hashlib.sha256(f"demand-control:{site.login}:{site.password}".encode()).hexdigest()[:8]


def _where(site: TrytonSite) -> str:
    return str(site.sqlite_path) if site.backend == "sqlite" else _safe_uri(site.uri)


def _safe_uri(uri: str) -> str:
    parts = urlsplit(uri)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return uri


class _pg_admin:
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


def _drop_database(site: TrytonSite) -> None:
    if site.backend == "sqlite":
        site.sqlite_path.unlink(missing_ok=True)
        return
    with _pg_admin(site) as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{site.database}" WITH (FORCE)')


def _create_database(site: TrytonSite) -> None:
    """Activate `MODULES` in a new database with trytond-admin (about 30 s).

    On SQLite the result is also kept as a modules-only template, so the next init of any landscape copies
    it instead of running trytond-admin again.
    """
    if site.backend == "sqlite":
        base = site.templates / f"modules-{_password_fingerprint(site)}-v{SCHEMA_VERSION}.sqlite"
        if base.exists():
            shutil.copyfile(base, site.sqlite_path)
            return
        # trytond-admin only initialises an existing SQLite file.
        site.sqlite_path.touch()
        _run_trytond_admin(site)
        base.parent.mkdir(parents=True, exist_ok=True)
        partial = base.with_suffix(".partial")
        shutil.copyfile(site.sqlite_path, partial)
        partial.replace(base)
        return
    with _pg_admin(site) as cur:
        cur.execute(f'CREATE DATABASE "{site.database}" ENCODING \'UTF8\'')
    _run_trytond_admin(site)


def _run_trytond_admin(site: TrytonSite) -> None:
    admin = Path(sys.executable).with_name("trytond-admin")
    # trytond-admin reads the admin password from TRYTONPASSFILE (it prompts without one); the file lives
    # only for the duration of the call and is readable by this user alone.
    with tempfile.NamedTemporaryFile("w", prefix="tryton-pass-", delete=False) as handle:
        os.chmod(handle.name, 0o600)
        handle.write(site.password)
    try:
        cmd = [
            str(admin), "-c", str(site.config_path), "-d", site.database, "--all", "-u", *MODULES,
            "--activate-dependencies", "--email", f"{site.login}@example.com",
        ]
        env = {**os.environ, "TRYTONPASSFILE": handle.name}
        env.pop("TRYTOND_DATABASE_URI", None)
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    finally:
        os.unlink(handle.name)
    if done.returncode != 0:
        raise TrytonSetupError(
            f"trytond-admin failed creating {site.database!r} (exit {done.returncode}):\n{_tail(done.stderr)}"
        )


def _run_seed_worker(site: TrytonSite, frames: Mapping[str, pd.DataFrame]) -> dict:
    with tempfile.TemporaryDirectory(prefix="tryton-seed-") as tmp:
        frames_path = Path(tmp) / "frames.pickle"
        result_path = Path(tmp) / "result.pickle"
        with frames_path.open("wb") as fh:
            pickle.dump(dict(frames), fh, protocol=pickle.HIGHEST_PROTOCOL)
        cmd = [
            sys.executable, "-m", "demand_control.sample.tryton_setup", "seed",
            "--config", str(site.config_path), "--uri", site.uri, "--database", site.database,
            "--login", site.login, "--frames", str(frames_path), "--result", str(result_path),
        ]
        env = {**os.environ, "PYTHONWARNINGS": "ignore::DeprecationWarning"}
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise TrytonSetupError(f"seeding Tryton database {site.database!r} failed:\n{_tail(done.stderr, 40)}")
        with result_path.open("rb") as fh:
            return pickle.load(fh)


def _tail(text: str, lines: int = 20) -> str:
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
    _check_backend(site)
    if not database_exists(site):
        raise TrytonSetupError(f"no Tryton database {site.database!r} at {_where(site)}: run `demand-control erp init`")
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
            return _tail(fh.read().decode(errors="replace"))
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


# The seeding worker: runs in the child process, with trytond imported and its pool initialised.


def _seed(config_file: str, uri: str, database: str, login: str, frames: dict[str, pd.DataFrame]) -> dict:
    os.environ["TRYTOND_DATABASE_URI"] = uri  # proteus reads it to combine with the database name
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 2)
        clock = now

    from proteus import config as proteus_config

    proteus = proteus_config.set_trytond(database=database, user=login, config_file=config_file)
    lap("pool")
    as_of = _landscape_as_of(frames)
    _setup_company(proteus, as_of)
    lap("company")

    from trytond.pool import Pool
    from trytond.transaction import Transaction
    from trytond.worker import run_task

    pool = Pool(database)
    context = {**proteus.context, "_skip_warnings": True}
    seeder = _Seeder(pool, frames, as_of)
    steps = [
        ("masters", seeder.masters),
        ("stock", seeder.stock),
        ("sales", seeder.sales),
        ("purchases", seeder.purchases),
        ("opportunities", seeder.opportunities),
        ("finish", seeder.finish),
    ]
    for name, step in steps:
        with Transaction().start(database, proteus.user, context=context) as transaction:
            step()
            tasks = list(transaction.tasks)
            transaction.tasks.clear()
        # Confirmed sales and purchases queue their processing (shipments, moves) to run after commit, as
        # trytond's dispatcher does when no queue worker is configured.
        for task_id in tasks:
            run_task(pool, task_id)
        lap(name)
    return {"counts": seeder.counts, "timings": timings}


def _landscape_as_of(frames: Mapping[str, pd.DataFrame]) -> dt.date:
    return pd.Timestamp(frames["inventory_position"]["as_of"].max()).date()


def _setup_company(proteus, as_of: dt.date) -> None:
    """Currency, company, employee, chart of accounts, fiscal year and payment term, as the scenarios do."""
    from dateutil.relativedelta import relativedelta
    from proteus import Model, Wizard

    Currency = Model.get("currency.currency")
    CurrencyRate = Model.get("currency.currency.rate")
    Party = Model.get("party.party")
    User = Model.get("res.user")
    Employee = Model.get("company.employee")

    currency = Currency(name="U.S. Dollar", symbol="$", code="USD", rounding=Decimal("0.01"))
    currency.save()
    CurrencyRate(date=dt.date.min, rate=Decimal("1.0"), currency=currency).save()

    company_config = Wizard("company.company.config")
    company_config.execute("company")
    company = company_config.form
    party = Party(name=COMPANY_NAME)
    party.save()
    company.party = party
    company.currency = currency
    company_config.execute("add")
    proteus._context = User.get_preferences(True, {})
    company = Model.get("company.company").find()[0]

    employee_party = Party(name=EMPLOYEE_NAME)
    employee_party.save()
    employee = Employee(party=employee_party, company=company)
    employee.save()
    user = User(proteus.user)
    user.employees.append(employee)
    user.employee = employee
    user.save()
    proteus._context = User.get_preferences(True, {})

    AccountTemplate = Model.get("account.account.template")
    ModelData = Model.get("ir.model.data")
    create_chart = Wizard("account.create_chart")
    create_chart.execute("account")
    create_chart.form.account_template = AccountTemplate(
        ModelData.get_id("account.account_template_root_en", proteus.context)
    )
    create_chart.form.company = company
    create_chart.execute("create_account")
    accounts = _accounts(company)
    create_chart.form.account_receivable = accounts["receivable"]
    create_chart.form.account_payable = accounts["payable"]
    create_chart.form.category_account_expense = accounts["expense"]
    create_chart.form.category_account_revenue = accounts["revenue"]
    create_chart.execute("create_properties")

    FiscalYear = Model.get("account.fiscalyear")
    SequenceStrict = Model.get("ir.sequence.strict")
    SequenceType = Model.get("ir.sequence.type")
    start = as_of - relativedelta(months=6, day=1)
    end = as_of + relativedelta(months=5, day=31)
    move_type, = SequenceType.find([("name", "=", "Account Move")], limit=1)
    invoice_type, = SequenceType.find([("name", "=", "Invoice")], limit=1)
    fiscalyear = FiscalYear(name=str(as_of.year), start_date=start, end_date=end, company=company)
    fiscalyear.move_sequence = SequenceStrict(name=str(as_of.year), sequence_type=move_type, company=company)
    fiscalyear.move_sequence.save()
    invoice_sequence = SequenceStrict(name=str(as_of.year), sequence_type=invoice_type, company=company)
    invoice_sequence.save()
    sequences, = fiscalyear.invoice_sequences
    sequences.out_invoice_sequence = invoice_sequence
    sequences.in_invoice_sequence = invoice_sequence
    sequences.out_credit_note_sequence = invoice_sequence
    sequences.in_credit_note_sequence = invoice_sequence
    fiscalyear.save()
    fiscalyear.click("create_period")

    PaymentTerm = Model.get("account.invoice.payment_term")
    term = PaymentTerm(name="Direct")
    term.lines.new(type="remainder")
    term.save()

    Category = Model.get("product.category")
    goods = Category(name="Goods (accounting)", accounting=True)
    goods.account_expense = accounts["expense"]
    goods.account_revenue = accounts["revenue"]
    goods.save()


def _accounts(company) -> dict:
    from proteus import Model

    Account = Model.get("account.account")
    out = {}
    for kind in ("receivable", "payable", "revenue", "expense"):
        out[kind], = Account.find(
            [(f"type.{kind}", "=", True), ("company", "=", company.id), ("closed", "!=", True)], limit=1
        )
    return out


def _money(value: float) -> Decimal:
    return Decimal(str(round(float(value), 4)))


def _day(value) -> dt.date:
    return pd.Timestamp(value).date()


class _Seeder:
    """Writes the landscape into Tryton with bulk ORM calls, one step per transaction."""

    def __init__(self, pool, frames: Mapping[str, pd.DataFrame], as_of: dt.date):
        self.pool = pool
        self.frames = frames
        self.as_of = as_of
        self.counts: dict[str, int] = {}

    def _get(self, name: str):
        return self.pool.get(name)

    def _load_refs(self) -> None:
        """Ids of what earlier steps created, looked up again because each step is its own transaction."""
        Company = self._get("company.company")
        Location = self._get("stock.location")
        Product = self._get("product.product")
        Party = self._get("party.party")
        PaymentTerm = self._get("account.invoice.payment_term")
        Employee = self._get("company.employee")
        self.company, = Company.search([])
        self.currency = self.company.currency
        self.payment_term, = PaymentTerm.search([("name", "=", "Direct")])
        self.employee, = Employee.search([])
        self.customer_location, = Location.search([("code", "=", "CUS"), ("type", "=", "customer")])
        self.lost_found, = Location.search([("type", "=", "lost_found")])
        self.warehouses = {w.code: w for w in Location.search([("type", "=", "warehouse")])}
        from trytond.transaction import Transaction

        with Transaction().set_context(active_test=False):
            self.products = {p.code: p for p in Product.search([])}
        self.parties = {p.code: p for p in Party.search([])}

    def masters(self) -> None:
        f = self.frames
        Uom = self._get("product.uom")
        UomCategory = self._get("product.uom.category")
        ModelData = self._get("ir.model.data")
        Category = self._get("product.category")
        Template = self._get("product.template")
        PartyCategory = self._get("party.category")
        Party = self._get("party.party")
        Location = self._get("stock.location")
        ProductSupplier = self._get("purchase.product_supplier")
        Company = self._get("company.company")

        company, = Company.search([])
        currency = company.currency
        uoms = {unit: ModelData.get_id("product", xml_id) for unit, xml_id in UOM_XML_ID_BY_UNIT.items()}
        # Tryton has no "case" unit; a category of its own keeps it from converting to pieces.
        case_category, = UomCategory.create([{"name": "Case"}])
        case_uom, = Uom.create(
            [{"name": "Case", "symbol": CASE_UOM_SYMBOL, "category": case_category.id, "factor": 1.0, "rate": 1.0,
              "rounding": 1.0, "digits": 0}]
        )
        uoms["case"] = case_uom.id

        accounting, = Category.search([("accounting", "=", True)])
        products = f["product"]
        categories = Category.create([{"name": name} for name in sorted(products["category"].unique())])
        category_ids = {c.name: c.id for c in categories}
        templates = []
        for row in products.itertuples(index=False):
            uom = uoms[row.unit]
            templates.append({
                "name": row.description,
                "code": row.sku,
                "type": "goods",
                "default_uom": uom,
                "sale_uom": uom,
                "purchase_uom": uom,
                "salable": True,
                "purchasable": True,
                "list_price": _money(row.unit_price),
                "cost_price_method": "fixed",
                "account_category": accounting.id,
                "categories": [("add", [category_ids[row.category]])],
                "products": [("create", [{"cost_price": _money(row.unit_cost)}])],
            })
        _create(Template, templates)
        self.counts["products"] = len(templates)

        roots = PartyCategory.create(
            [{"name": CUSTOMER_CATEGORY}, {"name": SUPPLIER_CATEGORY}, {"name": REGION_CATEGORY}]
        )
        customers_root, suppliers_root, regions_root = roots
        customers = f["customer"]
        tiers = PartyCategory.create(
            [{"name": t, "parent": customers_root.id} for t in sorted(customers["tier"].unique())]
        )
        tier_ids = {c.name: c.id for c in tiers}
        regions = PartyCategory.create(
            [{"name": r, "parent": regions_root.id} for r in sorted(customers["region"].unique())]
        )
        region_ids = {c.name: c.id for c in regions}
        parties = []
        for row in customers.itertuples(index=False):
            parties.append(_party_values(
                row.customer_id, row.name, row.notify_email,
                [customers_root.id, tier_ids[row.tier], region_ids[row.region]],
            ))
        for row in f["supplier"].itertuples(index=False):
            parties.append(_party_values(row.supplier_id, row.name, row.contact, [suppliers_root.id]))
        _create(Party, parties)
        self.counts["customers"] = len(customers)
        self.counts["suppliers"] = len(f["supplier"])

        locations = f["location"]
        first, = Location.search([("type", "=", "warehouse")])
        rows = list(locations.itertuples(index=False))
        # Tryton ships one warehouse (WH); it becomes the first DC, the others are copies of it.
        Location.write([first], {"name": rows[0].name, "code": rows[0].location_id})
        for row in rows[1:]:
            Location.copy([first], default={"name": row.name, "code": row.location_id})
        # A warehouse has no region in Tryton; its address does, as a subdivision of the company's country
        # (ZZ, the ISO code reserved for user-assigned use).
        Country = self._get("country.country")
        Subdivision = self._get("country.subdivision")
        Address = self._get("party.address")
        country, = Country.create([{"name": "Distribution network", "code": "ZZ"}])
        region_names = sorted({row.region for row in rows})
        subdivisions = Subdivision.create([
            {"country": country.id, "name": name, "code": f"ZZ-{i:02d}", "type": "region"}
            for i, name in enumerate(region_names, start=1)
        ])
        subdivision_of = {sub.name: sub.id for sub in subdivisions}
        addresses = Address.create([
            {"party": company.party.id, "country": country.id, "subdivision": subdivision_of[row.region]}
            for row in rows
        ])
        for row, address in zip(rows, addresses, strict=True):
            warehouse, = Location.search([("type", "=", "warehouse"), ("code", "=", row.location_id)])
            Location.write([warehouse], {"address": address.id})
        self.counts["warehouses"] = len(rows)

        self._load_refs()
        lanes = []
        for row in f["sourcing"].itertuples(index=False):
            product = self.products[row.sku]
            lanes.append({
                "template": product.template.id,
                "product": product.id,
                "party": self.parties[row.supplier_id].id,
                "code": row.location_id,
                "sequence": PRIMARY_SEQUENCE if row.primary else ALTERNATE_SEQUENCE,
                "lead_time": dt.timedelta(days=float(row.lead_time_days)),
                "currency": currency.id,
                "company": company.id,
                "prices": [("create", [{"quantity": float(row.moq), "unit_price": _money(row.unit_cost)}])],
            })
        _create(ProductSupplier, lanes)
        self.counts["product_suppliers"] = len(lanes)

    def stock(self) -> None:
        """Opening balance, one done move per SKU-location-week of demand, then a count at `as_of`."""
        self._load_refs()
        Move = self._get("stock.move")
        Inventory = self._get("stock.inventory")
        f = self.frames
        hist = f["demand_history"]
        hist = hist[hist["qty"] > 0]
        sku = hist["sku"].astype(str).to_numpy()
        loc = hist["location_id"].astype(str).to_numpy()
        period = pd.to_datetime(hist["period_start"]).dt.date.to_numpy()
        qty = np.round(hist["qty"].to_numpy(dtype=np.float64), 2)
        prices = f["product"].set_index("sku")

        storage = {code: w.storage_location.id for code, w in self.warehouses.items()}
        product_ids = {code: p.id for code, p in self.products.items()}
        uom_ids = {code: p.default_uom.id for code, p in self.products.items()}
        unit_price = {s: _money(v) for s, v in prices["unit_price"].items()}
        cost_price = {s: _money(v) for s, v in prices["unit_cost"].items()}
        company, currency, customer = self.company.id, self.currency.id, self.customer_location.id

        opening_date = pd.Timestamp(f["demand_history"]["period_start"].min()).date() - dt.timedelta(days=1)
        opening = hist.groupby(["sku", "location_id"], observed=True)["qty"].sum()
        opening_moves = [
            {
                "product": product_ids[s], "unit": uom_ids[s], "quantity": round(float(q), 2),
                "internal_quantity": round(float(q), 2),
                "from_location": self.lost_found.id, "to_location": storage[l],
                "planned_date": opening_date, "effective_date": opening_date,
                "company": company, "cost_price": cost_price[s],
            }
            for (s, l), q in opening.items()
        ]
        history_moves = [
            {
                "product": product_ids[s], "unit": uom_ids[s], "quantity": float(q), "internal_quantity": float(q),
                "from_location": storage[l], "to_location": customer,
                "planned_date": d, "effective_date": d,
                "company": company, "unit_price": unit_price[s], "currency": currency, "cost_price": cost_price[s],
            }
            for s, l, d, q in zip(sku, loc, period, qty, strict=True)
        ]
        _insert_done_moves(Move, opening_moves)
        _insert_done_moves(Move, history_moves)
        self.counts["opening_moves"] = len(opening_moves)
        self.counts["history_moves"] = len(history_moves)

        positions = f["inventory_position"]
        inventories = []
        for code, rows in positions.groupby("location_id", sort=True):
            inventories.append({
                "location": storage[code],
                "date": self.as_of,
                "company": company,
                "lines": [("create", [
                    {"product": product_ids[r.sku], "quantity": float(r.on_hand)}
                    for r in rows.itertuples(index=False)
                ])],
            })
        created = _create(Inventory, inventories)
        Inventory.confirm(created)
        self.counts["inventories"] = len(created)

    def sales(self) -> None:
        self._load_refs()
        Sale = self._get("sale.sale")
        lines = self.frames["customer_order_line"].sort_values(["order_id", "line_no"])
        prices = self.frames["product"].set_index("sku")["unit_price"]
        values = []
        for order_id, rows in lines.groupby("order_id", sort=True):
            head = rows.iloc[0]
            party = self.parties[head["customer_id"]]
            address = party.addresses[0].id
            promise = _day(head["promise_date"])
            values.append({
                "party": party.id,
                "invoice_address": address,
                "shipment_address": address,
                "warehouse": self.warehouses[head["location_id"]].id,
                "reference": order_id,
                "sale_date": min(self.as_of, promise),
                "shipping_date": promise,
                "payment_term": self.payment_term.id,
                "invoice_method": "fulfillment",
                "shipment_method": "order",
                "company": self.company.id,
                "currency": self.currency.id,
                "lines": [("create", [{
                    "type": "line",
                    "sequence": int(r.line_no),
                    "product": self.products[r.sku].id,
                    "unit": self.products[r.sku].default_uom.id,
                    "quantity": float(r.qty_open),
                    "unit_price": _money(prices[r.sku]),
                    "note": format_tags({"priority": int(r.priority), "status": r.status}),
                } for r in rows.itertuples(index=False)])],
            })
        sales = _create(Sale, values)
        Sale.quote(sales)
        Sale.confirm(sales)
        self.counts["sales"] = len(sales)
        self.counts["sale_lines"] = len(lines)

    def purchases(self) -> None:
        self._load_refs()
        Purchase = self._get("purchase.purchase")
        ProductSupplier = self._get("purchase.product_supplier")
        lanes = {
            (ps.product.code, ps.code, ps.party.code): ps
            for ps in ProductSupplier.search([])
        }
        lines = self.frames["purchase_order_line"].sort_values(["po_id", "line_no"])
        values, statuses = [], []
        for po_id, rows in lines.groupby("po_id", sort=True):
            head = rows.iloc[0]
            party = self.parties[head["supplier_id"]]
            line_values = []
            for r in rows.itertuples(index=False):
                lane = lanes[(r.sku, r.location_id, r.supplier_id)]
                delivery = r.confirmed_date if not pd.isna(r.confirmed_date) else r.expected_date
                line_values.append({
                    "type": "line",
                    "sequence": int(r.line_no),
                    "product": self.products[r.sku].id,
                    "product_supplier": lane.id,
                    "unit": self.products[r.sku].default_uom.id,
                    "quantity": float(r.qty_open),
                    "unit_price": lane.prices[0].unit_price,
                    "delivery_date_edit": True,
                    "delivery_date_store": _day(delivery),
                    "note": format_tags({"status": r.status}),
                })
            values.append({
                "party": party.id,
                "invoice_address": party.addresses[0].id,
                "warehouse": self.warehouses[head["location_id"]].id,
                "reference": po_id,
                "purchase_date": _day(head["order_date"]),
                "payment_term": self.payment_term.id,
                "invoice_method": "fulfillment",
                "company": self.company.id,
                "currency": self.currency.id,
                "lines": [("create", line_values)],
            })
            statuses.append(head["status"])
        purchases = _create(Purchase, values)
        states = [PURCHASE_STATE_BY_STATUS[s] for s in statuses]
        to_quote = [p for p, state in zip(purchases, states, strict=True) if state != "draft"]
        to_confirm = [p for p, state in zip(purchases, states, strict=True) if state == "processing"]
        Purchase.quote(to_quote)
        Purchase.confirm(to_confirm)
        self.counts["purchases"] = len(purchases)
        self.counts["purchase_lines"] = len(lines)

    def opportunities(self) -> None:
        self._load_refs()
        Opportunity = self._get("sale.opportunity")
        rows_all = self.frames["pipeline_opportunity"]
        values = []
        for opp_id, rows in rows_all.groupby("opportunity_id", sort=True):
            head = rows.iloc[0]
            party = self.parties[head["customer_id"]]
            expected = _day(head["expected_date"])
            values.append({
                "reference": opp_id,
                "description": head["stage"],
                "party": party.id,
                "address": party.addresses[0].id,
                "employee": self.employee.id,
                "payment_term": self.payment_term.id,
                "company": self.company.id,
                "currency": self.currency.id,
                "start_date": min(self.as_of, expected),
                "end_date": expected,
                "conversion_probability": float(head["probability"]),
                # Written directly: won and lost are reached through sales in Tryton's workflow, and the
                # pipeline must not turn into extra sale orders.
                "state": OPPORTUNITY_STATE_BY_STAGE[head["stage"]],
                "lines": [("create", [{
                    "product": self.products[r.sku].id,
                    "unit": self.products[r.sku].default_uom.id,
                    "quantity": float(r.qty),
                } for r in rows.itertuples(index=False)])],
            })
        _create(Opportunity, values)
        self.counts["opportunities"] = len(values)
        self.counts["opportunity_lines"] = len(rows_all)

    def finish(self) -> None:
        """Put back the dates processing changed, and retire discontinued products."""
        self._load_refs()
        Move = self._get("stock.move")
        SaleLine = self._get("sale.line")
        PurchaseLine = self._get("purchase.line")
        Template = self._get("product.template")
        Product = self._get("product.product")

        # Processing plans a customer move no earlier than today; an overdue promise must stay overdue.
        promises = {
            r.order_id: _day(r.promise_date) for r in self.frames["customer_order_line"].itertuples(index=False)
        }
        by_date: dict[dt.date, list] = {}
        for line in SaleLine.search([("sale.reference", "in", list(promises))]):
            promise = promises[line.sale.reference]
            for move in line.moves:
                if move.planned_date != promise:
                    by_date.setdefault(promise, []).append(move)
        for date, moves in by_date.items():
            _write(Move, moves, {"planned_date": date, "origin_planned_date": date})

        # Processing blanks the planned date of a move already overdue, and plans from the confirmed date
        # only: the overdue date must stay (a late supplier is the signal), and the buyer's expected date
        # is kept as the move's origin planned date.
        targets = {}
        for r in self.frames["purchase_order_line"].itertuples(index=False):
            delivery = r.confirmed_date if not pd.isna(r.confirmed_date) else r.expected_date
            targets[(r.po_id, int(r.line_no))] = (_day(delivery), _day(r.expected_date))
        by_dates: dict[tuple[dt.date, dt.date], list] = {}
        for line in PurchaseLine.search([("purchase.reference", "in", sorted({k[0] for k in targets}))]):
            target = targets[(line.purchase.reference, line.sequence)]
            for move in line.moves:
                if (move.planned_date, move.origin_planned_date) != target:
                    by_dates.setdefault(target, []).append(move)
        for (planned, origin), moves in by_dates.items():
            _write(Move, moves, {"planned_date": planned, "origin_planned_date": origin})

        products = self.frames["product"]
        inactive = set(products.loc[~products["active"].astype(bool), "sku"])
        retired = [self.products[s] for s in sorted(inactive)]
        if retired:
            _write(Product, retired, {"active": False})
            _write(Template, [p.template for p in retired], {"active": False})
        self.counts["inactive_products"] = len(retired)


# trytond checks unique constraints on SQLite with one OR-chain over all records written in a call, and
# SQLite's parser gives up past ~100 nested terms; creating in slices of this many stays below that.
SQLITE_SAFE_BATCH = 40


def _create(Model, values: list[dict]) -> list:
    created = []
    for lo in range(0, len(values), SQLITE_SAFE_BATCH):
        created.extend(Model.create(values[lo:lo + SQLITE_SAFE_BATCH]))
    return created


def _write(Model, records: list, values: dict) -> None:
    for lo in range(0, len(records), SQLITE_SAFE_BATCH):
        Model.write(records[lo:lo + SQLITE_SAFE_BATCH], values)


def _insert_done_moves(Move, moves: list[dict]) -> None:
    """Create past, done stock moves: the first through the ORM, the rest as SQL rows shaped like it.

    The ORM costs about 4 ms per move (domain validation of every field, then `do`), minutes for a demo
    history; these moves have no origin, shipment or cost to compute (fixed cost price), so the first one
    goes through `create` + `do` and serves as the prototype whose every column the others copy, with
    only their own product, quantity, locations, dates and prices changed.
    """
    if not moves:
        return
    from trytond.transaction import Transaction

    orm_fields = {k: v for k, v in moves[0].items() if k != "internal_quantity"}
    prototype, = Move.create([orm_fields])
    Move.do([prototype])
    table = Move.__table__()
    cursor = Transaction().connection.cursor()
    cursor.execute(*table.select(where=table.id == prototype.id))
    columns = [d[0] for d in cursor.description if d[0] != "id"]
    base = dict(zip([d[0] for d in cursor.description], cursor.fetchone(), strict=True))
    fields = Move._fields
    rows = [
        [fields[c].sql_format(values[c]) if c in values else base[c] for c in columns] for values in moves[1:]
    ]
    # 500 rows x ~22 columns stays under SQLite's limit of bound parameters per statement.
    for lo in range(0, len(rows), 500):
        cursor.execute(*table.insert([getattr(table, c) for c in columns], rows[lo:lo + 500]))


def _party_values(code: str, name: str, email: str | None, categories: list[int]) -> dict:
    values: dict = {
        "code": code,
        "name": name,
        "addresses": [("create", [{}])],
        "categories": [("add", categories)],
    }
    if isinstance(email, str) and email:
        values["contact_mechanisms"] = [("create", [{"type": "email", "value": email}])]
    return values


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demand_control.sample.tryton_setup")
    sub = parser.add_subparsers(dest="command", required=True)
    seed = sub.add_parser("seed", help="seed a freshly created Tryton database (used by init_database)")
    seed.add_argument("--config", required=True)
    seed.add_argument("--uri", required=True)
    seed.add_argument("--database", required=True)
    seed.add_argument("--login", required=True)
    seed.add_argument("--frames", required=True)
    seed.add_argument("--result", required=True)
    args = parser.parse_args(argv)
    with open(args.frames, "rb") as fh:
        frames = pickle.load(fh)
    result = _seed(args.config, args.uri, args.database, args.login, frames)
    with open(args.result, "wb") as fh:
        pickle.dump(result, fh)
    return 0


if __name__ == "__main__":
    sys.exit(_main())
