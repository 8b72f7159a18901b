"""Resources the code location binds: the warehouse, the signal source (the file drop, or Tryton when
`DEMAND_CONTROL_SOURCE=tryton`), the ERP, the quality limits, Slack, the customer mailer and the optional advisor.

Each is configured from the environment through `dg.EnvVar`, resolved when a run starts, so secrets such as
a database password never appear in code or in the Dagster UI.
"""

from __future__ import annotations

import os

import dagster as dg

from demand_control.infra import settings
from demand_control.resources.advisor import AdvisorResource
from demand_control.services.advisor import settings as advisor_env
from demand_control.resources.clock import PlanningClock
from demand_control.resources.forecast import ForecastSettingsResource
from demand_control.resources.mail import mailer_from_env
from demand_control.resources.planning_policy import PlanningPolicy
from demand_control.resources.quality import QualitySettings
from demand_control.resources.slack import DEFAULT_API_URL, SlackNotifier
from demand_control.resources.sources import FileDropSource, SignalSource
from demand_control.resources.erp.write import TrytonErp
from demand_control.resources.warehouse import Warehouse

__all__ = ["FileDropSource", "PlanningClock", "QualitySettings", "SignalSource", "TrytonErp", "Warehouse", "resources_from_env"]


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

    def _or(name: str, default: str) -> dg.EnvVar | str:
        return _env(name) or default

    erp = TrytonErp(
        url=_or(settings.ERP_URL_ENV, settings.default_erp_url()),
        database=_or(settings.ERP_DATABASE_ENV, "demand_control"),
        login=_or(settings.ERP_LOGIN_ENV, "admin"),
        # The embedded demo ERP's password; production sets DEMAND_CONTROL_ERP_PASSWORD.
        password=_or(settings.ERP_PASSWORD_ENV, "admin"),
    )
    file_drop = FileDropSource(folder=_env(settings.SOURCE_FOLDER_ENV))
    return {
        "warehouse": Warehouse(database_url=_env(settings.DATABASE_URL_ENV), home=_env(settings.HOME_ENV)),
        "signal_source": erp if settings.signal_source_name() == "tryton" else file_drop,
        "erp": erp,
        "quality_settings": QualitySettings(),
        # The run's as-of: its tag demand_control/as_of, else DEMAND_CONTROL_AS_OF, else today.
        "clock": PlanningClock(),
        # Both read their environment variables when a run loads them (DEMAND_CONTROL_FORECAST_CLUSTER,
        # DEMAND_CONTROL_POLICY), so they need no binding here.
        "forecast_settings": ForecastSettingsResource(),
        "planning_policy": PlanningPolicy(),
        # Without SLACK_BOT_TOKEN the notifier prints and writes the notifications table: the embedded default.
        "slack_notifier": SlackNotifier(
            bot_token=_env("SLACK_BOT_TOKEN"),
            base_url=_or("SLACK_API_URL", DEFAULT_API_URL),
            channel_override=_env("SLACK_CHANNEL_OVERRIDE"),
        ),
        # Without DEMAND_CONTROL_SMTP_HOST customer notices go to the console and the customer_notices table.
        "mailer": mailer_from_env(deferred),
        # Without DEMAND_CONTROL_ADVISOR_MODEL the advisor is off: the plan uses its templates and rules only.
        "advisor": AdvisorResource(
            model=_env(advisor_env.MODEL_ENV), base_url=_env(advisor_env.BASE_URL_ENV), api_key=_env(advisor_env.API_KEY_ENV),
        ),
    }



