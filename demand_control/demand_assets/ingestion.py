"""Ingestion: one raw extract (group `signals`) and one staged, validated table (group `staged`) per
canonical object of the file drop.

Raw assets keep the feed as delivered (text) so a bad load can be diagnosed from the warehouse; staged
assets type and validate it against the contract, quarantine the rows that break a row-level rule and
replace the staged table with the good rows. A feed with a structural problem (missing column, empty
file) leaves the staged table as it was; the blocking contract check then stops everything downstream.
"""


import dagster as dg
import pandas as pd
from sqlalchemy import select, update

from demand_control.schema import tables
from demand_control.schema.contracts import CONTRACTS, FILE_DROP_OBJECTS, Contract
from demand_control.schema.asset_metadata import TEAM_DATA_ENG, preview, raw_schema, table_schema
from demand_control.quality.feeds import last_cursor, latest_load, reference_sets
from demand_control.quality.validation import FeedValidation, validate_feed
from demand_control.resources.clock import PlanningClock
from demand_control.resources.sources import FeedMissingError, SignalSource
from demand_control.resources.warehouse import Warehouse, bulk_insert


def delivered_text(frame: pd.DataFrame, contract: Contract) -> pd.DataFrame:
    """The contract's columns of a feed as text, the way a raw table keeps them; undelivered columns are null."""
    out = pd.DataFrame(index=frame.index)
    for name in contract.column_names:
        if name not in frame.columns:
            out[name] = None
            continue
        values = frame[name]
        if pd.api.types.is_datetime64_any_dtype(values):
            at_midnight = values.dropna().dt.normalize().eq(values.dropna()).all()
            text = values.dt.strftime("%Y-%m-%d") if at_midnight else values.map(lambda v: v.isoformat())
        elif pd.api.types.is_bool_dtype(values):
            text = values.map({True: "true", False: "false"})
        else:
            text = values.map(lambda v: v.isoformat() if hasattr(v, "isoformat") else str(v))
        out[name] = text.where(values.notna(), None)
    return out


def key_strings(frame: pd.DataFrame, contract: Contract) -> pd.Series:
    """One comparable text per row from the key columns, whatever their types came back as."""
    if frame.empty:
        return pd.Series([], dtype=str, index=frame.index)
    parts = [frame[k].map(lambda v: v.isoformat() if hasattr(v, "isoformat") else str(v)) for k in contract.key]
    out = parts[0]
    for part in parts[1:]:
        out = out + "|" + part
    return out


def merge_increment(
    previous: pd.DataFrame, changed: pd.DataFrame, removed: pd.DataFrame, contract: Contract
) -> pd.DataFrame:
    """The staged table after an increment: changed rows replace their previous version, removed rows go,
    everything else stays as it was (including the last good version of a row whose new version is bad)."""
    gone = set(key_strings(changed, contract)) | set(key_strings(removed, contract))
    kept = previous.loc[~key_strings(previous, contract).isin(gone)]
    return pd.concat([kept, changed], ignore_index=True)


def read_staged(conn, contract: Contract) -> pd.DataFrame:  # noqa: ANN001
    return pd.read_sql(select(tables.STAGED[contract.name]), conn)


def raw_asset(contract: Contract) -> dg.AssetsDefinition:
    name = tables.raw_table_name(contract.name)

    @dg.asset(
        name=name,
        group_name="signals",
        owners=[TEAM_DATA_ENG],
        kinds={"pandas", "sqlalchemy"},
        description=f"{contract.description} Raw extract, as delivered by the source, before validation.",
        metadata={"dagster/column_schema": raw_schema(contract), "dagster/table_name": name},
    )
    def _raw(
        context: dg.AssetExecutionContext, warehouse: Warehouse, signal_source: SignalSource, clock: PlanningClock
    ) -> dg.MaterializeResult:
        warehouse.ensure_schema()
        since = last_cursor(warehouse, contract.name, signal_source.source_system)
        try:
            extract = signal_source.extract(contract.name, since=since)
        except FeedMissingError as exc:
            # Nothing is overwritten: the last raw and staged rows stay as they were.
            raise dg.Failure(description=str(exc)) from exc
        delivered = list(extract.frame.columns)
        removed = extract.removed if extract.removed is not None else pd.DataFrame(columns=list(contract.key))
        now = clock.now()
        with warehouse.engine.begin() as conn:
            load_id = conn.execute(
                tables.feed_load.insert().values(
                    object=contract.name,
                    source_system=extract.source_system,
                    source_uri=extract.source_uri,
                    source_modified_at=extract.modified_at,
                    extracted_at=now,
                    rows_extracted=len(extract.frame),
                    columns_found=",".join(map(str, delivered)),
                    mode=extract.mode,
                    cursor=extract.cursor,
                    rows_removed=len(removed),
                    status="extracted",
                )
            ).inserted_primary_key[0]
        raw = pd.concat(
            [
                delivered_text(extract.frame, contract).assign(change="upsert"),
                delivered_text(removed, contract).assign(change="remove"),
            ],
            ignore_index=True,
        )
        raw.insert(0, "row_number", range(1, len(raw) + 1))
        raw.insert(0, "load_id", load_id)
        rows = warehouse.replace_rows(name, raw)
        context.log.info(
            f"extracted {len(extract.frame)} changed and {len(removed)} removed {contract.name} rows "
            f"({extract.mode}) from {extract.source_uri} as load {load_id}"
        )
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": rows,
                "load_id": load_id,
                "mode": extract.mode,
                "cursor_before": since or "none",
                "cursor_after": extract.cursor or "none",
                "rows_removed": len(removed),
                "source": extract.source_uri,
                "source_system": extract.source_system,
                "source_modified_at": extract.modified_at.isoformat() if extract.modified_at else "unknown",
                "columns_delivered": ", ".join(map(str, delivered)) or "none",
                "preview": preview(raw.drop(columns=["load_id"])),
            }
        )

    return _raw


def staged_asset(contract: Contract) -> dg.AssetsDefinition:
    deps = [tables.raw_table_name(contract.name), *contract.referenced_objects]

    @dg.asset(
        name=contract.name,
        group_name="staged",
        deps=deps,
        owners=[TEAM_DATA_ENG],
        kinds={"pandas", "sqlalchemy"},
        description=f"{contract.description} Validated against its contract; bad rows are quarantined.",
        metadata={"dagster/column_schema": table_schema(contract), "dagster/table_name": contract.name},
    )
    def _staged(context: dg.AssetExecutionContext, warehouse: Warehouse, clock: PlanningClock) -> dg.MaterializeResult:
        load = latest_load(warehouse, contract.name)
        if load is None:
            raise dg.Failure(description=f"no extract of {contract.name} yet: materialize raw_{contract.name} first")
        raw = warehouse.read(tables.raw_table_name(contract.name), where=tables.RAW[contract.name].c.load_id == load.load_id)
        raw = raw.sort_values("row_number")
        removed = raw.loc[raw["change"] == "remove", list(contract.key)]
        delivered = [c for c in load.columns_found.split(",") if c]
        upserts = raw.loc[raw["change"] == "upsert", [c for c in contract.column_names if c in delivered]]
        upserts = upserts.reset_index(drop=True)
        now = clock.now()
        incremental = load.mode == "incremental"
        if incremental and upserts.empty:
            # Nothing changed at the source since the last cursor: a normal, empty increment.
            result = FeedValidation.nothing_delivered(contract)
        else:
            result = validate_feed(contract, upserts, reference_sets(warehouse, contract), today=now.date())

        quarantined = result.quarantine.assign(load_id=load.load_id, loaded_at=now)
        feed_load = tables.feed_load
        with warehouse.engine.begin() as conn:
            if len(quarantined):
                bulk_insert(conn, tables.quarantine, quarantined)
            if result.structural_errors:
                status, rows_staged = "rejected", 0
            else:
                staged = result.good.assign(source_system=load.source_system, loaded_at=now)
                if incremental:
                    staged = merge_increment(read_staged(conn, contract), staged, removed, contract)
                table = tables.STAGED[contract.name]
                conn.execute(table.delete())
                bulk_insert(conn, table, staged)
                rows_staged = len(result.good)
                status = "staged"
            conn.execute(
                update(feed_load)
                .where(feed_load.c.load_id == load.load_id)
                .values(
                    staged_at=now,
                    rows_staged=rows_staged,
                    rows_quarantined=len(result.quarantine),
                    structural_errors="\n".join(result.structural_errors) or None,
                    status=status,
                )
            )
        kept = warehouse.count(contract.name)
        if status == "rejected":
            context.log.error(
                f"{contract.name} feed rejected, staged table keeps its {kept} rows: " + "; ".join(result.structural_errors)
            )
        rules = (
            result.quarantine.groupby(["rule", "column"]).size().rename("rows").reset_index()
            if len(result.quarantine)
            else pd.DataFrame()
        )
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": kept,
                "load_id": load.load_id,
                "feed_status": status,
                "rows_delivered": result.rows_in,
                "rows_staged": rows_staged,
                "mode": load.mode,
                "rows_removed": len(removed) if status == "staged" else 0,
                "rows_quarantined": len(result.quarantine),
                "structural_errors": "\n".join(result.structural_errors) or "none",
                "source": load.source_uri,
                "source_modified_at": load.source_modified_at.isoformat() if load.source_modified_at else "unknown",
                "quarantine_by_rule": preview(rules, rows=20),
                "preview": preview(result.good),
            }
        )

    return _staged


raw_assets = [raw_asset(CONTRACTS[name]) for name in FILE_DROP_OBJECTS]
staged_assets = [staged_asset(CONTRACTS[name]) for name in FILE_DROP_OBJECTS]

defs = dg.Definitions(assets=[*raw_assets, *staged_assets])
