"""`demand-control ...`: the command line for engineers, the demo and the benchmarks."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated, Literal

import typer

from demand_control.cli.approvals import register as register_approvals
from demand_control.cli.dev import dev
from demand_control.cli.audit import audit_app
from demand_control.cli.dashboard import dashboard
from demand_control.cli.erp import erp_app, parse_as_of
from demand_control.cli.errors import OneLineErrors
from demand_control.cli.forecast import forecast_app
from demand_control.cli.retention import retention_app
from demand_control.cli.gateway import events_app, gateway
from demand_control.cli.simulate import simulate
from demand_control.cli.worklist import worklist_command

app = typer.Typer(cls=OneLineErrors, no_args_is_help=True, add_completion=False, help="The demand-planning control layer.")
landscape_app = typer.Typer(no_args_is_help=True, help="The sample distributor: generate its exports.")
warehouse_app = typer.Typer(no_args_is_help=True, help="The warehouse database.")
app.add_typer(landscape_app, name="landscape")
app.add_typer(warehouse_app, name="warehouse")
app.add_typer(erp_app, name="erp")
app.add_typer(forecast_app, name="forecast")
app.add_typer(audit_app, name="audit")
app.add_typer(retention_app, name="retention")
app.add_typer(events_app, name="events")
app.command("gateway")(gateway)
app.command("simulate")(simulate)
app.command("worklist")(worklist_command)
app.command("dev")(dev)
app.command("dashboard")(dashboard)
register_approvals(app)

AS_OF_HELP = "Plan as of this date (ISO): every 'today' of the command and the processes it starts; default: DEMAND_CONTROL_AS_OF, else today (UTC)."


def set_as_of(value: str | None) -> None:
    """Put this process, and every process it starts, on the planning date `value` (see `clock`)."""
    if not value:
        return
    from demand_control.infra import clock

    parsed = parse_as_of(value)
    os.environ[clock.AS_OF_ENV] = parsed.isoformat()


@app.callback()
def main(as_of: Annotated[str | None, typer.Option("--as-of", help=AS_OF_HELP)] = None) -> None:
    """The demand-planning control layer."""
    set_as_of(as_of)


@landscape_app.command("generate")
def landscape_generate(
    out: Annotated[Path, typer.Option(help="Folder to write one file per canonical object into.")],
    skus: Annotated[int, typer.Option(min=1, help="Number of SKUs.")] = 200,
    locations: Annotated[int, typer.Option(min=1, help="Number of distribution centres.")] = 3,
    weeks: Annotated[int, typer.Option(min=2, help="Weeks of demand history.")] = 130,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives byte-identical files.")] = 7,
    as_of: Annotated[str | None, typer.Option(help="Snapshot date (default: the planning clock's today).")] = None,
    file_format: Annotated[str, typer.Option("--format", help="parquet or csv.")] = "parquet",
) -> None:
    """Generate a deterministic synthetic distributor as a file drop."""
    from demand_control.sample import generate_landscape, write_landscape

    if file_format not in ("parquet", "csv"):
        raise typer.BadParameter(f"--format must be parquet or csv, got {file_format!r}")
    fmt: Literal["parquet", "csv"] = "parquet" if file_format == "parquet" else "csv"
    started = time.perf_counter()
    frames = generate_landscape(skus=skus, locations=locations, weeks=weeks, seed=seed, as_of=parse_as_of(as_of))
    paths = write_landscape(frames, out, fmt)
    for name, path in paths.items():
        typer.echo(f"{name:<22} {len(frames[name]):>12,} rows  {path}")
    typer.echo(f"generated {skus * locations:,} SKU-locations in {time.perf_counter() - started:.1f} s")


@warehouse_app.command("migrate")
def warehouse_migrate() -> None:
    """Create or upgrade the warehouse tables (Alembic) at the configured database."""
    from demand_control.resources.warehouse import warehouse_from_env

    warehouse = warehouse_from_env()
    warehouse.migrate()
    typer.echo(f"warehouse at {_safe_url(warehouse.url)} is at the newest migration")


@warehouse_app.command("dictionary")
def warehouse_dictionary(
    output: Annotated[Path, typer.Option(help="Markdown file to write (its folder is created).")] = Path("docs/data_dictionary.md"),
) -> None:
    """Write the data dictionary (every table and column, its type, key and description) generated from the table definitions."""
    from demand_control.schema.dictionary import data_dictionary_markdown

    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(data_dictionary_markdown())
    typer.echo(f"wrote the data dictionary to {output}")


@app.command("contracts")
def contracts(
    readme: Annotated[Path | None, typer.Option(help="Rewrite the table between the contract markers of this file.")] = None,
) -> None:
    """Print the canonical contracts as the markdown table the README embeds (or refresh it in place)."""
    from demand_control.schema.contracts import contracts_markdown

    table = contracts_markdown()
    if readme is None:
        typer.echo(table)
        return
    text = readme.read_text()
    start, end = "<!-- contracts:start -->", "<!-- contracts:end -->"
    if start not in text or end not in text:
        raise typer.BadParameter(f"{readme} has no {start} ... {end} markers")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(f"{head}{start}\n{table}\n{end}{tail}")
    typer.echo(f"refreshed the contract table in {readme}")


@app.command("demo")
def demo(
    skus: Annotated[int, typer.Option(min=1)] = 200,
    locations: Annotated[int, typer.Option(min=1)] = 3,
    weeks: Annotated[int, typer.Option(min=2)] = 130,
    seed: Annotated[int, typer.Option()] = 7,
    source: Annotated[str, typer.Option(help="tryton (the local ERP) or file_drop (exports with planted defects).")] = "tryton",
    as_of: Annotated[str | None, typer.Option("--as-of", help=AS_OF_HELP)] = None,
) -> None:
    """Generate a small landscape, run the main job end to end and print what happened."""
    from demand_control.sample.demo import run_demo

    set_as_of(as_of)
    if source not in ("tryton", "file_drop"):
        raise typer.BadParameter(f"--source must be tryton or file_drop, got {source!r}")
    raise typer.Exit(run_demo(skus=skus, locations=locations, weeks=weeks, seed=seed, source=source, echo=typer.echo))


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


if __name__ == "__main__":
    app()
