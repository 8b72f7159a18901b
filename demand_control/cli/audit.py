"""`demand-control audit ...`: check the audit log's keyed hash chain against the anchors, take an anchor."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

audit_app = typer.Typer(no_args_is_help=True, help="The append-only audit log.")


CHECKPOINTS_HELP = ("Checkpoint file to verify against, e.g. a copy fetched from write-once storage (default: "
                    "DEMAND_CONTROL_AUDIT_CHECKPOINTS, else audit_checkpoints.jsonl in the state folder).")


@audit_app.command("verify")
def audit_verify(checkpoints: Annotated[Path | None, typer.Option("--checkpoints", help=CHECKPOINTS_HELP)] = None) -> None:
    """Walk the audit log's hash chain against the checkpoint file's anchors; name truncation (rows at or after
    an anchor missing) or rewrite (a hash does not match) with the first broken row (exit code 1), or confirm
    the chain is intact."""
    from demand_control.infra import settings
    from demand_control.resources.warehouse import warehouse_from_env
    from demand_control.services.audit import read_anchors, verify_chain

    warehouse = warehouse_from_env()
    warehouse.migrate()
    checkpoints = checkpoints or settings.audit_checkpoint_path(warehouse.state_home)
    anchors = read_anchors(checkpoints)
    report = verify_chain(warehouse.engine, anchors=anchors)
    keyed = (f"keyed from row {report.keyed_from}" if report.keyed_from is not None
             else f"UNKEYED (set {settings.AUDIT_KEY_ENV})")
    checked = (f"{report.anchors_checked} of {len(anchors)} anchors in {checkpoints} hold"
               if anchors else f"no anchors yet in {checkpoints}")
    if report.ok:
        typer.echo(f"audit chain intact: {report.rows:,} rows verified, {keyed}; {checked}")
        return
    typer.echo(f"audit chain {report.kind.upper()} after {report.rows:,} good rows: {report.reason}", err=True)
    raise typer.Exit(code=1)


@audit_app.command("anchor")
def audit_anchor() -> None:
    """Append the chain's head to the checkpoint file now (each plan does it too). Run it right after setting
    DEMAND_CONTROL_AUDIT_KEY for the first time: the re-anchor records where the keyed rows begin."""
    from demand_control.infra import settings
    from demand_control.resources.warehouse import warehouse_from_env
    from demand_control.services.audit import anchor

    warehouse = warehouse_from_env()
    warehouse.migrate()
    checkpoints = settings.audit_checkpoint_path(warehouse.state_home)
    mark = anchor(warehouse.engine, checkpoints, by="cli")
    keyed = f"keyed from row {mark.keyed_from}" if mark.keyed_from is not None else "unkeyed"
    typer.echo(f"anchored row {mark.audit_id} ({mark.row_hash[:16]}…, {keyed}) in {checkpoints}")
