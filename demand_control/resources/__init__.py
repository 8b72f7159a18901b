"""Resources the code location binds: the warehouse, the signal source and the quality limits.

Each is configured from the environment through `dg.EnvVar`, resolved when a run starts, so secrets such as
a database password never appear in code or in the Dagster UI.
"""

from __future__ import annotations

import os

import dagster as dg

from demand_control import settings
from demand_control.resources.quality import QualitySettings
from demand_control.resources.sources import FileDropSource, SignalSource
from demand_control.resources.warehouse import Warehouse

__all__ = ["FileDropSource", "QualitySettings", "SignalSource", "Warehouse", "resources_from_env"]


def resources_from_env(deferred: bool = True) -> dict[str, dg.ConfigurableResource]:
    """The resources as the environment configures them.

    `deferred` binds `dg.EnvVar`s that Dagster resolves when a run starts (the code location); without it the
    values are read now, for code that uses the resources outside a run (the demo, the CLI).
    """

    def _env(name: str) -> dg.EnvVar | str:
        # Optional settings: an unset variable means "use the default".
        if not os.environ.get(name):
            return ""
        return dg.EnvVar(name) if deferred else os.environ[name]

    return {
        "warehouse": Warehouse(database_url=_env(settings.DATABASE_URL_ENV), home=_env(settings.HOME_ENV)),
        "signal_source": FileDropSource(folder=_env(settings.SOURCE_FOLDER_ENV)),
        "quality_settings": QualitySettings(),
    }



