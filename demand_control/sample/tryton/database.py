"""Creating the local Tryton database: `init_database` activates the planning modules with trytond-admin and
seeds the landscape in a child process (`seeding`); `restore_or_init` copies a cached seeded template instead
when one exists, so the next init of the same landscape takes a second."""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from demand_control.sample.tryton.server import (
    TrytonSetupError,
    TrytonSite,
    check_backend,
    database_exists,
    database_location,
    last_lines,
    pg_admin,
)

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


def init_database(
    site: TrytonSite, frames: Mapping[str, pd.DataFrame], *, force: bool = False, cache_key: str | None = None
) -> InitReport:
    """Create the database with `MODULES`, set up the company and seed it from `frames`.

    Refuses to touch an existing database unless `force`. With `cache_key` (SQLite only) the seeded file is
    also kept as a template that `restore_or_init` copies back.
    """
    started = time.perf_counter()
    check_backend(site)
    site.write_config()
    if database_exists(site):
        if not force:
            raise TrytonSetupError(
                f"Tryton database {site.database!r} already exists ({database_location(site)}); "
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
        _publish_copy(site.sqlite_path, target)
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


def _publish_copy(source: Path, target: Path) -> None:
    """Copy `source` to `target` through a partial file named for this process, then rename: a crash mid-copy
    never leaves a truncated template, and two processes building the same template at once (two test
    workers, two `erp serve`) each rename a whole copy instead of writing into one partial file."""
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    shutil.copyfile(source, partial)
    partial.replace(target)


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


def _drop_database(site: TrytonSite) -> None:
    if site.backend == "sqlite":
        site.sqlite_path.unlink(missing_ok=True)
        return
    with pg_admin(site) as cur:
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
        _publish_copy(site.sqlite_path, base)
        return
    with pg_admin(site) as cur:
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
            f"trytond-admin failed creating {site.database!r} (exit {done.returncode}):\n{last_lines(done.stderr)}"
        )


def _run_seed_worker(site: TrytonSite, frames: Mapping[str, pd.DataFrame]) -> dict:
    with tempfile.TemporaryDirectory(prefix="tryton-seed-") as tmp:
        frames_path = Path(tmp) / "frames.pickle"
        result_path = Path(tmp) / "result.pickle"
        with frames_path.open("wb") as fh:
            pickle.dump(dict(frames), fh, protocol=pickle.HIGHEST_PROTOCOL)
        cmd = [
            sys.executable, "-m", "demand_control.sample.tryton.seeding", "seed",
            "--config", str(site.config_path), "--uri", site.uri, "--database", site.database,
            "--login", site.login, "--frames", str(frames_path), "--result", str(result_path),
        ]
        env = {**os.environ, "PYTHONWARNINGS": "ignore::DeprecationWarning"}
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise TrytonSetupError(f"seeding Tryton database {site.database!r} failed:\n{last_lines(done.stderr, 40)}")
        with result_path.open("rb") as fh:
            return pickle.load(fh)
