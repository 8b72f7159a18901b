"""Data-quality gates upstream of a decision (RELIABILITY.md §21): the blocking asset checks on an asset's
ancestors, and which of them failed at their latest evaluation. Dagster stops a blocking check's downstream
steps within one run only; a later run (a replan, a partial re-execution) would plan on the data the gate
refused, so auto-approval asks here and falls back to a person while any gate is failed."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import dagster as dg
from dagster._core.definitions.assets.graph.base_asset_graph import BaseAssetGraph
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus


def blocking_checks_upstream(asset_graph: BaseAssetGraph, asset_key: dg.AssetKey) -> list[dg.AssetCheckKey]:
    """The blocking checks on `asset_key` and every asset it depends on, directly or not."""
    upstream = asset_graph.get_ancestor_asset_keys(asset_key, include_self=True)
    keys = [key for key in asset_graph.asset_check_keys if key.asset_key in upstream and asset_graph.get_check_spec(key).blocking]
    return sorted(keys, key=lambda key: (key.asset_key.to_user_string(), key.name))


def gate_name(key: dg.AssetCheckKey) -> str:
    return f"{key.asset_key.to_user_string()}:{key.name}"


def failed_gates(instance: dg.DagsterInstance, checks: Sequence[dg.AssetCheckKey]) -> list[str]:
    """Of `checks`, those whose latest evaluation failed at severity ERROR (what makes a blocking check block),
    each as "asset:check (why)". A check never evaluated does not count: the asset it guards was never built
    through it either."""
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(list(checks))
    failed = []
    for key in checks:
        record = latest.get(key)
        if record is None or record.status != AssetCheckExecutionRecordStatus.FAILED:
            continue
        event = record.event.dagster_event if record.event is not None else None
        evaluation = event.event_specific_data if event is not None else None
        severity = getattr(evaluation, "severity", dg.AssetCheckSeverity.ERROR)
        if severity != dg.AssetCheckSeverity.ERROR:
            continue
        description = getattr(evaluation, "description", None)
        failed.append(gate_name(key) + (f" ({description})" if description else ""))
    return failed


def failed_gates_upstream(instance: dg.DagsterInstance, asset_graph: BaseAssetGraph, asset_key: dg.AssetKey) -> list[str]:
    """The blocking checks upstream of `asset_key` (itself included) whose latest evaluation failed."""
    return failed_gates(instance, blocking_checks_upstream(asset_graph, asset_key))


@cache
def code_location_asset_graph() -> BaseAssetGraph:
    """The asset graph of this code location (assets and their checks; no resources needed), for runs that
    do not carry their repository (an in-process execution)."""
    from dagster._core.definitions.assets.graph.asset_graph import AssetGraph

    from demand_control import demand_assets, quality

    return AssetGraph.from_assets([*(demand_assets.defs.assets or []), *(quality.defs.asset_checks or [])])
