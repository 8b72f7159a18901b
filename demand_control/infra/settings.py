"""Where demand-control keeps its state, resolved from the environment in one place."""

from __future__ import annotations

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


def state_home() -> Path:
    """The state folder: `DEMAND_CONTROL_HOME`, else `.demand_control/` under the working directory."""
    return Path(os.environ.get(HOME_ENV) or ".demand_control").resolve()


def default_landscape_folder(home: Path | None = None) -> Path:
    return (home or state_home()) / "landscape"


def sqlite_url(home: Path) -> str:
    return f"sqlite:///{home / 'warehouse.sqlite'}"
