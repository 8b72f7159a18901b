"""`demand-control retention redact [--days N]`: redact personal data past its retention now (the daily
`redact_personal_data` schedule does the same)."""

from __future__ import annotations

from typing import Annotated

import typer

retention_app = typer.Typer(no_args_is_help=True, help="Personal data retention.")


@retention_app.command("redact")
def retention_redact(
    days: Annotated[int | None, typer.Option("--days", min=1, help="Retention in days (default: the policy's retention.personal_data_days).")] = None,
) -> None:
    """Redact inbox payloads, notification texts and customer notice addresses and bodies older than the
    retention period; ids, statuses and digests stay, and the audit chain still verifies."""
    from demand_control.planning.policy import load_policy
    from demand_control.resources.warehouse import warehouse_from_env
    from demand_control.services.retention import redact_personal_data

    retention_days = days if days is not None else load_policy().retention.personal_data_days
    warehouse = warehouse_from_env()
    warehouse.migrate()
    report = redact_personal_data(warehouse.engine, retention_days, actor="cli")
    typer.echo(report.summary())
