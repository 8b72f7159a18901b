"""Where demand-control keeps its state, resolved from the environment in one place."""

from __future__ import annotations

import functools
import os
from pathlib import Path

HOME_ENV = "DEMAND_CONTROL_HOME"
DATABASE_URL_ENV = "DEMAND_CONTROL_DATABASE_URL"
SOURCE_FOLDER_ENV = "DEMAND_CONTROL_SOURCE_FOLDER"
SOURCE_ENV = "DEMAND_CONTROL_SOURCE"  # file_drop (default) or tryton
ERP_URL_ENV = "DEMAND_CONTROL_ERP_URL"
ERP_DATABASE_ENV = "DEMAND_CONTROL_ERP_DATABASE"
ERP_LOGIN_ENV = "DEMAND_CONTROL_ERP_LOGIN"
ERP_PASSWORD_ENV = "DEMAND_CONTROL_ERP_PASSWORD"
ERP_PORT_ENV = "DEMAND_CONTROL_ERP_PORT"
ERP_DATABASE_URI_ENV = "DEMAND_CONTROL_ERP_DATABASE_URI"  # where `erp init` creates the local Tryton database
DEFAULT_ERP_PORT = 8765
FORECAST_CLUSTER_ENV = "DEMAND_CONTROL_FORECAST_CLUSTER"  # a Dask scheduler address
OPS_CHANNEL_ENV = "DEMAND_CONTROL_OPS_CHANNEL"  # where run failures, dead letters and unreconciled writes go
DEFAULT_OPS_CHANNEL = "#demand-control-ops"
SOURCES = ("file_drop", "tryton")
# The audit chain's HMAC key: the secret itself, or a file holding it; kept outside the database, so a person who
# can write the database cannot forge links. Unset: the chain is unkeyed (demo mode, logged), see services/audit.py.
AUDIT_KEY_ENV = "DEMAND_CONTROL_AUDIT_KEY"
AUDIT_KEY_FILE_ENV = "DEMAND_CONTROL_AUDIT_KEY_FILE"
# Where each plan appends the audit chain's head (an append-only JSON-lines file); default under the state folder.
AUDIT_CHECKPOINTS_ENV = "DEMAND_CONTROL_AUDIT_CHECKPOINTS"
# Who runs the CLI, as the deployment authenticated them (e.g. set by the login shell or the job runner); the
# policy file's `operators` maps it to a policy user.
OPERATOR_ENV = "DEMAND_CONTROL_OPERATOR"
# The planning regions, comma-separated (each a `location.region` value): the partitions of the plan. Read when
# the code location loads (Dagster's partitions are static); unset: the sample distributor's regions.
PLANNING_REGIONS_ENV = "DEMAND_CONTROL_PLANNING_REGIONS"
# The engine that runs a region's steps (the plan_region job's executor), read when the code location loads:
# `multiprocess` (default: each step in its own process on the run's machine) or `dask` (the dagster-dask
# executor). With `dask`, the scheduler address below; unset: a Dask LocalCluster started by each run.
REGION_EXECUTOR_ENV = "DEMAND_CONTROL_REGION_EXECUTOR"
REGION_DASK_SCHEDULER_ENV = "DEMAND_CONTROL_REGION_DASK_SCHEDULER"
REGION_EXECUTORS = ("multiprocess", "dask")


def env_number(name: str, default: float, parse: type[int] | type[float], what: str) -> float:
    """A number from the environment variable `name` (unset or empty: `default`); a value `parse` refuses is
    one clear error naming the variable, what it must be and the value."""
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        return parse(raw)
    except ValueError:
        raise ValueError(f"{name} must be {what}, got {raw!r}") from None


def signal_source_name() -> str:
    name = os.environ.get(SOURCE_ENV) or "file_drop"
    if name not in SOURCES:
        raise ValueError(f"{SOURCE_ENV}={name!r} is not a source; use one of {', '.join(SOURCES)}")
    return name


def default_erp_url() -> str:
    """The local Tryton `demand-control erp serve` runs."""
    return f"http://127.0.0.1:{os.environ.get(ERP_PORT_ENV) or DEFAULT_ERP_PORT}"


def ops_channel() -> str:
    """The operations channel: run failures, write-back dead letters and unreconciled writes."""
    return os.environ.get(OPS_CHANNEL_ENV) or DEFAULT_OPS_CHANNEL


def audit_key() -> bytes | None:
    """The audit chain's HMAC key from `DEMAND_CONTROL_AUDIT_KEY` or the file `DEMAND_CONTROL_AUDIT_KEY_FILE`
    names; None when neither is set. A named file that cannot be read is an error, never a silent unkeyed chain."""
    value = os.environ.get(AUDIT_KEY_ENV)
    if value:
        return value.encode()
    path = os.environ.get(AUDIT_KEY_FILE_ENV)
    if not path:
        return None
    try:
        key = _read_key_file(path, os.stat(path).st_mtime_ns)
    except OSError as exc:
        raise ValueError(f"{AUDIT_KEY_FILE_ENV}={path!r} cannot be read: {exc.strerror}") from exc
    if not key:
        raise ValueError(f"{AUDIT_KEY_FILE_ENV}={path!r} is empty")
    return key


@functools.lru_cache(maxsize=4)
def _read_key_file(path: str, mtime_ns: int) -> bytes:
    """Read once per file version (the gateway appends a link per event)."""
    return Path(path).read_bytes().strip()


def audit_checkpoint_path(home: Path | None = None) -> Path:
    """The audit checkpoint file: `DEMAND_CONTROL_AUDIT_CHECKPOINTS`, else `audit_checkpoints.jsonl` in the
    state folder (`home`, else `DEMAND_CONTROL_HOME`)."""
    configured = os.environ.get(AUDIT_CHECKPOINTS_ENV)
    if configured:
        return Path(configured).resolve()
    return (home or state_home()) / "audit_checkpoints.jsonl"


def state_home() -> Path:
    """The state folder: `DEMAND_CONTROL_HOME`, else `.demand_control/` under the working directory."""
    return Path(os.environ.get(HOME_ENV) or ".demand_control").resolve()


def default_landscape_folder(home: Path | None = None) -> Path:
    return (home or state_home()) / "landscape"


def sqlite_url(home: Path) -> str:
    return f"sqlite:///{home / 'warehouse.sqlite'}"


def planning_regions(default: tuple[str, ...]) -> tuple[str, ...]:
    """The planning regions from DEMAND_CONTROL_PLANNING_REGIONS (unset or empty: `default`); an empty or
    repeated name is one clear error naming the variable and the value."""
    raw = os.environ.get(PLANNING_REGIONS_ENV, "").strip()
    if not raw:
        return default
    names = tuple(name.strip() for name in raw.split(","))
    if any(not name for name in names) or len(set(names)) != len(names):
        raise ValueError(f"{PLANNING_REGIONS_ENV} must list distinct region names separated by commas, got {raw!r}")
    return names


def region_executor_name() -> str:
    """The plan_region job's engine from DEMAND_CONTROL_REGION_EXECUTOR (unset or empty: multiprocess); any
    other value is one clear error naming the variable, the choices and the value."""
    name = os.environ.get(REGION_EXECUTOR_ENV, "").strip() or "multiprocess"
    if name not in REGION_EXECUTORS:
        raise ValueError(f"{REGION_EXECUTOR_ENV}={name!r} is not an executor; use one of {', '.join(REGION_EXECUTORS)}")
    return name


def region_dask_scheduler() -> str | None:
    """The Dask scheduler the region runs' steps go to (DEMAND_CONTROL_REGION_DASK_SCHEDULER), or None."""
    return os.environ.get(REGION_DASK_SCHEDULER_ENV, "").strip() or None
