"""`demand-control dev`: the Dagster UI, daemon and code server (`dagster dev`), stopped as a whole by Ctrl-C or
SIGTERM within `--grace` + 2 seconds (`demand_control.infra.supervise`)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer


def dev(
    host: Annotated[str, typer.Option(help="Address the UI listens on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port of the UI.")] = 3000,
    workspace: Annotated[Path, typer.Option("--workspace", "-w", help="Dagster workspace file.")] = Path("workspace.yaml"),
    grace: Annotated[float, typer.Option(min=0.0, max=60.0, help="Seconds the services get to stop after Ctrl-C before they are terminated, then killed 2 s later.")] = 6.0,
) -> None:
    """Run the Dagster UI, daemon and code server; Ctrl-C or SIGTERM stops all of them."""
    from demand_control.infra.supervise import supervise

    if not workspace.is_file():
        raise typer.BadParameter(f"--workspace {workspace} is not a file")
    dagster = shutil.which("dagster", path=os.path.dirname(sys.executable)) or shutil.which("dagster")
    if dagster is None:
        raise typer.BadParameter("the dagster command is not installed next to this Python (run make install)")
    argv = [dagster, "dev", "-w", str(workspace), "-h", host, "-p", str(port)]
    raise typer.Exit(supervise(argv, grace_seconds=grace, kill_after_seconds=2.0, echo=typer.echo))
