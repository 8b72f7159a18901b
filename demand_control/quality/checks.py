"""Asset checks on the staged tables, built from the contracts.

`contract_rules` is blocking: a feed with a structural problem, or with more quarantined rows than the
configured share, stops everything downstream; otherwise the Great Expectations suite re-runs on the staged
table so the check proves what analysts will read. `feed_fresh` warns when a source has not changed within
its freshness window; later stages read the same facts to stop auto-approval on stale data.
"""


import dagster as dg

from demand_control.schema.contracts import CONTRACTS, FILE_DROP_OBJECTS, Contract
from demand_control.schema.asset_metadata import preview
from demand_control.quality.feeds import feed_age_hours, latest_load, reference_sets
from demand_control.quality.validation import validate_table
from demand_control.resources.clock import PlanningClock
from demand_control.resources.quality import QualitySettings
from demand_control.resources.warehouse import Warehouse

CONTRACT_RULES_CHECK = "contract_rules"
FEED_FRESH_CHECK = "feed_fresh"


def contract_rules_check(contract: Contract) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=contract.name,
        name=CONTRACT_RULES_CHECK,
        blocking=True,
        description=f"{contract.name} meets its contract: the feed is structurally sound, at most the configured "
        "share of rows is quarantined, and the staged table passes every Great Expectations rule.",
    )
    def _check(warehouse: Warehouse, quality_settings: QualitySettings, clock: PlanningClock) -> dg.AssetCheckResult:
        load = latest_load(warehouse, contract.name)
        if load is None:
            return dg.AssetCheckResult(passed=False, description=f"{contract.name} has never been extracted")
        rows_in = load.rows_extracted or 0
        share = (load.rows_quarantined or 0) / rows_in if rows_in else 0.0
        metadata: dict[str, object] = {
            "load_id": load.load_id,
            "feed_status": load.status,
            "rows_delivered": rows_in,
            "rows_quarantined": load.rows_quarantined or 0,
            "quarantined_share": round(share, 4),
            "quarantine_limit": quality_settings.quarantine_limit,
        }
        if load.structural_errors:
            return dg.AssetCheckResult(
                passed=False,
                description=f"{contract.name} feed rejected: {load.structural_errors}",
                metadata={**metadata, "structural_errors": load.structural_errors},
            )
        if share > quality_settings.quarantine_limit:
            return dg.AssetCheckResult(
                passed=False,
                description=f"{contract.name}: {share:.1%} of rows quarantined, above the limit of "
                f"{quality_settings.quarantine_limit:.1%}; see the quarantine table for load {load.load_id}",
                metadata=metadata,
            )
        staged = warehouse.read(contract.name)
        outcome = validate_table(contract, staged, reference_sets(warehouse, contract), today=clock.today())
        metadata.update(
            {
                "rows_staged": len(staged),
                "expectations_evaluated": outcome.expectations_evaluated,
                "expectations_failed": outcome.expectations_failed,
                "rules": preview(outcome.summary, rows=50),
            }
        )
        return dg.AssetCheckResult(
            passed=bool(outcome.success),
            description=None if outcome.success else f"{contract.name} staged table breaks: {outcome.failure_text}",
            metadata=metadata,
        )

    return _check


def feed_fresh_check(contract: Contract) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=contract.name,
        name=FEED_FRESH_CHECK,
        blocking=False,
        description=f"The {contract.name} feed changed at the source within the last "
        f"{contract.freshness_hours:g} hours; an older feed is stale and planning on it needs a human.",
    )
    def _check(warehouse: Warehouse, clock: PlanningClock) -> dg.AssetCheckResult:
        load = latest_load(warehouse, contract.name)
        if load is None:
            return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.WARN, description="never extracted")
        age = feed_age_hours(load, clock.now())
        fresh = age is not None and age <= contract.freshness_hours
        return dg.AssetCheckResult(
            passed=fresh,
            severity=dg.AssetCheckSeverity.WARN,
            description=None
            if fresh
            else f"{contract.name} feed is stale: last changed {'at an unknown time' if age is None else f'{age:.1f} h ago'}, "
            f"window {contract.freshness_hours:g} h",
            metadata={
                "age_hours": round(age, 2) if age is not None else -1.0,
                "freshness_window_hours": contract.freshness_hours,
                "source": load.source_uri,
            },
        )

    return _check


staged_checks = [
    check for name in FILE_DROP_OBJECTS for check in (contract_rules_check(CONTRACTS[name]), feed_fresh_check(CONTRACTS[name]))
]
