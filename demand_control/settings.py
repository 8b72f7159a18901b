"""Where demand-control keeps its state, resolved from the environment in one place."""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "DEMAND_CONTROL_HOME"
DATABASE_URL_ENV = "DEMAND_CONTROL_DATABASE_URL"
SOURCE_FOLDER_ENV = "DEMAND_CONTROL_SOURCE_FOLDER"


def state_home() -> Path:
    """The state folder: `DEMAND_CONTROL_HOME`, else `.demand_control/` under the working directory."""
    return Path(os.environ.get(HOME_ENV) or ".demand_control").resolve()


def default_landscape_folder(home: Path | None = None) -> Path:
    return (home or state_home()) / "landscape"


def sqlite_url(home: Path) -> str:
    return f"sqlite:///{home / 'warehouse.sqlite'}"
