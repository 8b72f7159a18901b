"""`demand-control audit ...`: check the audit log's hash chain."""

from __future__ import annotations

import typer

audit_app = typer.Typer(no_args_is_help=True, help="The append-only audit log.")


@audit_app.command("verify")
def audit_verify() -> None:
    """Walk the audit log's hash chain; name the first broken link (exit code 1) or confirm it is intact."""
    from demand_control.services.audit import verify_chain
    from demand_control.resources.warehouse import warehouse_from_env

    warehouse = warehouse_from_env()
    warehouse.migrate()
    report = verify_chain(warehouse.engine)
    if report.ok:
        typer.echo(f"audit chain intact: {report.rows:,} rows verified")
        return
    typer.echo(f"audit chain BROKEN after {report.rows:,} good rows: {report.reason}", err=True)
    raise typer.Exit(code=1)
