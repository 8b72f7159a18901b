"""`demand-control erp ...`: create, seed and serve the local Tryton ERP the control layer talks to."""

from __future__ import annotations

import signal
import time
from datetime import date
from typing import Annotated

import typer

from demand_control.infra import clock

erp_app = typer.Typer(no_args_is_help=True, help="The local Tryton ERP: create, seed and serve it.")


def parse_as_of(value: str | None) -> date:
    """An `--as-of` option: an ISO date, or the planning clock's today when empty."""
    if not value:
        return clock.today()
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"--as-of must be a date like 2026-11-27, got {value!r}") from exc


@erp_app.command("init")
def erp_init(
    skus: Annotated[int, typer.Option(min=1, help="Number of SKUs.")] = 200,
    locations: Annotated[int, typer.Option(min=1, help="Number of distribution centres.")] = 3,
    weeks: Annotated[int, typer.Option(min=2, help="Weeks of demand history.")] = 130,
    seed: Annotated[int, typer.Option(help="Random seed of the sample landscape.")] = 7,
    as_of: Annotated[str | None, typer.Option(help="Snapshot date (default: today, UTC).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Drop and recreate an existing database.")] = False,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Seed again even when a cached copy of this landscape exists.")
    ] = False,
) -> None:
    """Create the Tryton database and seed it from the sample landscape (or restore its cached copy)."""
    from demand_control.sample import generate_landscape
    from demand_control.sample.tryton import (
        TrytonSetupError,
        TrytonSite,
        database_exists,
        init_database,
        restore_or_init,
    )

    site = TrytonSite()
    started = time.perf_counter()
    frames = generate_landscape(skus=skus, locations=locations, weeks=weeks, seed=seed, as_of=parse_as_of(as_of))
    generated = time.perf_counter() - started
    cache_key = f"s{skus}-l{locations}-w{weeks}-seed{seed}-{parse_as_of(as_of).isoformat()}"
    try:
        if database_exists(site) and not force:
            raise TrytonSetupError(f"Tryton database {site.database!r} already exists; use --force to recreate it")
        if fresh:
            report = init_database(site, frames, force=True, cache_key=cache_key)
        else:
            report = restore_or_init(site, frames, cache_key)
    except TrytonSetupError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    where = site.sqlite_path if site.backend == "sqlite" else f"{site.backend} database {site.database}"
    if report.restored:
        typer.echo(f"Tryton database {site.database!r} at {where}: restored from the cached seeded copy "
                   f"in {time.perf_counter() - started:.1f} s (--fresh seeds again)")
        typer.echo("serve it with: demand-control erp serve")
        return
    for name, count in report.counts.items():
        typer.echo(f"{name:<22} {count:>10,}")
    typer.echo(
        f"Tryton database {site.database!r} at {where}: landscape {generated:.2f} s, "
        f"modules {report.create_seconds:.1f} s, seeding {report.seed_seconds:.1f} s, "
        f"total {time.perf_counter() - started:.1f} s"
    )
    typer.echo("serve it with: demand-control erp serve")


def _interrupt(signum, frame) -> None:  # noqa: ANN001
    raise KeyboardInterrupt


@erp_app.command("serve")
def erp_serve(
    detach: Annotated[
        bool, typer.Option("--detach", help="Start it in the background when it is initialised and not running.")
    ] = False,
) -> None:
    """Run trytond on 127.0.0.1 in the foreground until Ctrl-C."""
    from demand_control.sample.tryton import TrytonSetupError, TrytonSite, database_exists, is_serving, serve, stop

    site = TrytonSite()
    if detach:
        if is_serving(site):
            typer.echo(f"Tryton already serving at {site.rpc_url}")
        elif not database_exists(site):
            typer.echo("no local Tryton database yet (`make demo` or `demand-control erp init` creates it)")
        else:
            serve(site)  # the child outlives this command; it stops with the terminal's Ctrl-C
            typer.echo(f"Tryton serving at {site.rpc_url} in the background (log: {site.log_path})")
        return
    try:
        proc = serve(site)
    except TrytonSetupError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"Tryton serving database {site.database!r} at {site.rpc_url} (log: {site.log_path}); Ctrl-C stops it")
    # SIGTERM (e.g. from a process manager) stops the server the same way Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        code = proc.wait()
        typer.echo(f"trytond exited with code {code}; see {site.log_path}", err=True)
        raise typer.Exit(code or 1)
    except KeyboardInterrupt:
        stop(proc)
        typer.echo("Tryton stopped")
