"""Validate a delivered feed (or a staged table) against its contract with Great Expectations.

`validate_feed` is the staging gate of every file-drop object:

1. structure: a required column missing, or no rows at all, is a *structural* error that blocks the load;
2. typing (`normalise`, with `quality.parsing`): text or typed input is coerced to the contract types; a
   value that cannot be parsed is quarantined under `type:<type>` and becomes missing;
3. rules: the contract's GX suite (`suites.build_suite`) runs over the typed frame with the COMPLETE
   result format; every row a row-level expectation lists in `unexpected_index_list` is quarantined under
   the expectation's `meta["rule"]`. Duplicate keys keep their first occurrence; ';'-separated list
   columns are checked item by item in pandas (GX has no expectation for that);
4. the good rows go on; a feed where every row is quarantined is a structural error too.

`validate_table` runs the same suite over an already staged table and summarises it per expectation, for
the blocking Dagster asset check. Nothing here imports Dagster.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from typing import Any

import numpy as np
import pandas as pd

from demand_control.schema.contracts import Contract
from demand_control.quality import suites
from demand_control.quality.parsing import as_text, coerce, map_values
from demand_control.quality.suites import TABLE_RULES, UNIQUE_KEY, build_suite, key_label, list_rules, type_rule

QUARANTINE_COLUMNS = ["object", "key", "rule", "column", "offending_value"]
SUMMARY_COLUMNS = ["rule", "column", "success", "unexpected_count", "examples"]
EXAMPLES = 5





@dataclass
class FeedValidation:
    good: pd.DataFrame  # rows passing every row-level rule, typed, business columns in contract order
    quarantine: pd.DataFrame  # QUARANTINE_COLUMNS, one row per (bad row, broken rule)
    structural_errors: list[str]  # feed-level problems that block downstream
    rows_in: int
    expectations_evaluated: int
    expectations_failed: int

    @property
    def ok(self) -> bool:
        return not self.structural_errors

    @classmethod
    def nothing_delivered(cls, contract: Contract) -> "FeedValidation":
        """An incremental feed with no changes: nothing to stage, nothing wrong."""
        return cls(
            good=pd.DataFrame(columns=contract.column_names),
            quarantine=pd.DataFrame(columns=QUARANTINE_COLUMNS),
            structural_errors=[],
            rows_in=0,
            expectations_evaluated=0,
            expectations_failed=0,
        )


@dataclass
class TableValidation:
    success: bool
    rows: int
    summary: pd.DataFrame  # SUMMARY_COLUMNS, one row per rule evaluated (GX expectations, list and type rules)
    expectations_evaluated: int
    expectations_failed: int
    errors: list[str] = field(default_factory=list)  # expectations GX could not evaluate

    @property
    def failures(self) -> pd.DataFrame:
        return self.summary[~self.summary["success"]].reset_index(drop=True)

    @property
    def failed_rules(self) -> list[str]:
        """Failed rules as 'rule(column)', e.g. ['min_value(on_hand)', 'unique_key(sku|location_id|as_of)']."""
        return [f"{r.rule}({r.column})" for r in self.failures.itertuples()]

    def describe(self) -> str:
        """One sentence per failed rule, for a check's description or a log line."""
        lines = []
        for r in self.failures.itertuples():
            if r.rule in TABLE_RULES:
                lines.append(f"{r.rule} on {r.column}: the table has no column {r.column}")
                continue
            count = "?" if pd.isna(r.unexpected_count) else int(r.unexpected_count)
            examples = f", e.g. {', '.join(r.examples)}" if r.examples else ""
            lines.append(f"{r.rule} on {r.column}: {count} row(s) fail{examples}")
        lines += self.errors
        return "\n".join(lines) if lines else "all rules pass"

    @property
    def failure_text(self) -> str:
        """`describe()` on one line ('; '-separated), for an asset check description."""
        return self.describe().replace("\n", "; ")




_GX_LOCK = threading.Lock()


@cache
def _batch_definition() -> Any:
    """One ephemeral GX context per process, with a pandas whole-dataframe batch definition (slow to build)."""
    gx = suites.import_gx()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.config.analytics_enabled = False
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    source = context.data_sources.add_pandas("demand_control")
    asset = source.add_dataframe_asset("contract_frame")
    return asset.add_batch_definition_whole_dataframe("whole_frame")


@dataclass
class _Outcome:
    rule: str
    column: str
    success: bool
    unexpected_count: int | None
    rows: list[int]  # positional row numbers GX listed as unexpected
    error: str | None


def _exception_message(info: Mapping[str, Any] | None) -> str | None:
    """The error of an expectation GX could not evaluate, or None.

    GX 1.x reports it either flat ({"raised_exception": True, "exception_message": ...}) or, when a metric
    failed, keyed by metric id ({"MetricConfigurationID(...)": {"raised_exception": True, ...}}).
    """
    if not info:
        return None
    entries = [info] if "raised_exception" in info else [v for v in info.values() if isinstance(v, Mapping)]
    messages = [str(e.get("exception_message") or "unknown error") for e in entries if e.get("raised_exception")]
    return "; ".join(dict.fromkeys(messages)) or None


def _run_suite(suite: Any, frame: pd.DataFrame) -> list[_Outcome]:
    """Validate `frame` (RangeIndex) against `suite`; one outcome per expectation."""
    with _GX_LOCK:  # GX's context and metric caches are not documented as thread-safe
        definition = _batch_definition()
        batch = definition.get_batch(batch_parameters={"dataframe": frame})
        result = batch.validate(suite, result_format={"result_format": "COMPLETE"})
    outcomes = []
    for r in result.results:
        meta = r.expectation_config.meta or {}
        details = r.result or {}
        rule = meta.get("rule", r.expectation_config.type)
        rows = [int(i) for i in details.get("unexpected_index_list") or []]
        error = _exception_message(r.exception_info)
        if error is None and not r.success and not rows and rule not in TABLE_RULES:
            # a row-level rule must say which rows broke it, or nothing could be quarantined
            error = f"failed without listing its unexpected rows ({details.get('unexpected_count')} unexpected)"
        outcomes.append(
            _Outcome(
                rule=rule,
                column=meta.get("column", str(r.expectation_config.kwargs.get("column", ""))),
                success=bool(r.success) and error is None,
                unexpected_count=details.get("unexpected_count"),
                rows=rows,
                error=error,
            )
        )
    return outcomes




def _keys(contract: Contract, typed: pd.DataFrame, raw: pd.DataFrame) -> pd.Series:
    """Each row's key as text, key values joined by '|' (typed value when it parsed, delivered text otherwise)."""
    parts = []
    for name in contract.key:
        typed_text = pd.Series(map_values(typed[name], as_text), index=typed.index, dtype=object)
        if name in raw.columns and typed[name].isna().any():
            raw_text = pd.Series(map_values(raw[name], as_text), index=typed.index, dtype=object)
            typed_text = typed_text.where(typed[name].notna(), raw_text)
        parts.append(typed_text)
    if not parts:
        return pd.Series("", index=typed.index)
    key = parts[0].astype(str)
    for part in parts[1:]:
        key = key + "|" + part.astype(str)
    return key


def _quarantine_frame(rows: list[dict[str, str]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=QUARANTINE_COLUMNS)
    return frame.astype({c: object for c in QUARANTINE_COLUMNS}).reset_index(drop=True)


def _prepare(raw: pd.DataFrame) -> pd.DataFrame:
    """The delivered frame with a RangeIndex and header names stripped of stray whitespace."""
    frame = raw.reset_index(drop=True)
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame.loc[:, ~frame.columns.duplicated()]


def _normalise(contract: Contract, frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, pd.Series], pd.Series]:
    """(typed, type-failure mask per column, key text per row) of a prepared frame."""
    typed, failed = coerce(contract, frame, list(contract.columns))
    return typed, failed, _keys(contract, typed, frame)


def _type_failures(
    contract: Contract, frame: pd.DataFrame, failed: dict[str, pd.Series], keys: pd.Series
) -> dict[tuple[int, str, str], str]:
    """(row, rule, column) -> delivered text of every cell that did not parse."""
    reasons: dict[tuple[int, str, str], str] = {}
    for column in contract.columns:
        for row in np.flatnonzero(failed[column.name].to_numpy()):
            reasons[(int(row), type_rule(column.type), column.name)] = as_text(frame[column.name].iat[row])
    return reasons


def _quarantine_rows(
    contract: Contract, reasons: dict[tuple[int, str, str], str], keys: pd.Series
) -> pd.DataFrame:
    order = sorted(reasons.items(), key=lambda item: item[0][0])  # stable: row order, then discovery order
    return _quarantine_frame(
        [
            {"object": contract.name, "key": keys.iat[row], "rule": rule, "column": column, "offending_value": value}
            for (row, rule, column), value in order
        ]
    )


def normalise(contract: Contract, raw: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Coerce raw text/any-typed columns to the contract types.

    Returns (typed, type_failures): `typed` has exactly the contract's business columns, in contract order,
    with a RangeIndex (undeclared columns dropped, undelivered ones all missing); `type_failures` has the
    quarantine columns, rule 'type:<type>' and the delivered text as offending value. Values that cannot be
    parsed become missing in `typed` and their row is reported.

    string: stripped str, empty → missing; integer: Int64; float: float64 (no text like 'abc', 'nan', 'inf');
    boolean: true/false/1/0/yes/no in any case, or real bools; date: ISO YYYY-MM-DD (strict) or date/datetime
    objects, as `datetime.date`; datetime: ISO 8601 or datetime objects, tz-aware UTC (naive taken as UTC);
    json: valid JSON text (dicts/lists are serialised).
    """
    frame = _prepare(raw)
    typed, failed, keys = _normalise(contract, frame)
    return typed, _quarantine_rows(contract, _type_failures(contract, frame, failed, keys), keys)


def _empty_typed(contract: Contract) -> pd.DataFrame:
    typed, _ = coerce(contract, pd.DataFrame(), list(contract.columns))
    return typed


def _relevant_references(
    contract: Contract, typed: pd.DataFrame, references: Mapping[str, Collection[str]]
) -> dict[str, Collection[str]]:
    """The reference sets cut down to the values the frame actually holds.

    The result of "value in set" is the same for every row, but GX re-serialises an expectation's whole
    value_set many times per validation (pydantic `.dict()` per kwarg look-up), ~0.1 ms per item: a 20k-SKU
    product set would cost seconds per reference column, the intersection costs what the feed holds.
    """
    narrowed: dict[str, Collection[str]] = dict(references)
    for target in {c.references for c in contract.columns if c.references and c.references in references}:
        present: set[Any] = set()
        for col in contract.columns:
            if col.references == target and col.name in typed.columns:
                present.update(typed[col.name].dropna().unique().tolist())
        known = {str(v) for v in references[target] if v is not None}
        narrowed[target] = {v for v in present if v in known}
    return narrowed




def _split_items(value: Any) -> list[str]:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    return [item.strip() for item in str(value).split(";") if item.strip()]


def _list_rule_failures(
    contract: Contract,
    typed: pd.DataFrame,
    references: Mapping[str, Collection[str]],
    rows_in_scope: pd.Series,
    *,
    cascade: bool,
) -> dict[tuple[str, str], dict[int, str]]:
    """For each list rule, the rows whose list names an unknown item, with the unknown items joined by ';'.

    Items resolve against `references[target]`; a list referencing the object itself (product substitutes,
    which `feeds.reference_sets` leaves out) resolves against the frame's own rows in scope. With `cascade`
    (feeds) a row failing the rule leaves the scope and the check repeats until nothing changes, so no list
    in the good rows names a quarantined row. A rule with nothing to resolve against is skipped, like the
    reference rules of the suite.
    """
    failures: dict[tuple[str, str], dict[int, str]] = {}
    rules = [r for r in list_rules(contract) if r.column in typed.columns]
    items = {r.column: [_split_items(v) for v in typed[r.column].tolist()] for r in rules}
    in_scope = rows_in_scope.copy()
    changed = True
    while changed:
        changed = False
        for rule in rules:
            target_object, target_column = rule.target.split(".")
            if rule.target in references:
                known = {str(v) for v in references[rule.target] if v is not None}
            elif target_object == contract.name and target_column in typed.columns:
                known = {str(v) for v in typed.loc[in_scope.to_numpy(), target_column].dropna()}
            else:
                continue
            bad = failures.setdefault((rule.rule, rule.column), {})
            for row, row_items in enumerate(items[rule.column]):
                unknown = [item for item in row_items if item not in known]
                if unknown and row not in bad:
                    bad[row] = ";".join(unknown)
                    if cascade and in_scope.iat[row]:
                        in_scope.iat[row] = False
                        changed = True
    return failures




def validate_feed(
    contract: Contract,
    raw: pd.DataFrame,
    references: Mapping[str, Collection[str]],
    today: date,
) -> FeedValidation:
    """Type and validate one delivered feed; split it into good rows and quarantined rows."""
    if isinstance(today, datetime):
        today = today.date()
    frame = _prepare(raw)
    rows_in = len(frame)

    structural: list[str] = []
    missing = [c for c in contract.required_columns if c not in frame.columns]
    if missing:
        found = ", ".join(map(str, frame.columns)) or "none"
        structural.append(
            f"{contract.name} feed is missing required column(s) {', '.join(missing)}; columns found: {found}."
        )
    if rows_in == 0:
        structural.append(f"{contract.name} feed is empty: it has 0 rows.")
    if structural:
        return FeedValidation(_empty_typed(contract), _quarantine_frame([]), structural, rows_in, 0, 0)

    typed, failed_types, keys = _normalise(contract, frame)
    suite = build_suite(contract, _relevant_references(contract, typed, references), today=today)
    outcomes = _run_suite(suite, typed)
    evaluated = len(outcomes)
    failed = sum(not o.success for o in outcomes)

    # (row, rule, column) -> offending value, type failures first so a cell that did not parse is not
    # reported a second time as not_null
    reasons = _type_failures(contract, frame, failed_types, keys)
    type_cells = {(row, column) for row, _, column in reasons}
    later_duplicates = typed.duplicated(subset=list(contract.key), keep="first")
    for outcome in outcomes:
        if outcome.error is not None:
            structural.append(
                f"rule {outcome.rule} on {contract.name}.{outcome.column} could not be evaluated: {outcome.error}"
            )
            continue
        if outcome.success:
            continue
        if outcome.rule in TABLE_RULES:  # cannot happen after typing adds undelivered optional columns
            structural.append(f"{contract.name} feed failed {outcome.rule} on column {outcome.column}.")
            continue
        for row in outcome.rows:
            if outcome.rule == UNIQUE_KEY:
                if later_duplicates.iat[row]:  # the first occurrence of a key stays good
                    reasons[(row, UNIQUE_KEY, outcome.column)] = keys.iat[row]
            elif outcome.rule == suites.NOT_NULL and (row, outcome.column) in type_cells:
                continue  # already reported as the type failure that made it missing
            else:
                delivered = frame[outcome.column].iat[row] if outcome.column in frame.columns else None
                reasons[(row, outcome.rule, outcome.column)] = as_text(delivered)

    if structural:
        return FeedValidation(_empty_typed(contract), _quarantine_frame([]), structural, rows_in, evaluated, failed)

    bad_rows = {row for row, _, _ in reasons}
    in_scope = pd.Series([row not in bad_rows for row in range(rows_in)])
    list_failures = _list_rule_failures(contract, typed, references, in_scope, cascade=True)
    for (rule, column), rows in list_failures.items():
        for row, unknown in rows.items():
            reasons[(row, rule, column)] = unknown

    quarantine = _quarantine_rows(contract, reasons, keys)
    bad_rows = {row for row, _, _ in reasons}
    good = typed.drop(index=sorted(bad_rows)).reset_index(drop=True)
    if good.empty:
        structural.append(
            f"every row of the {contract.name} feed was quarantined ({rows_in} rows); "
            f"see the quarantine table for the rules they broke."
        )
    return FeedValidation(good, quarantine, structural, rows_in, evaluated, failed)




def validate_table(
    contract: Contract,
    table: pd.DataFrame,
    references: Mapping[str, Collection[str]],
    today: date,
) -> TableValidation:
    """Run the contract suite over an already staged table (no quarantine): success and one row per rule.

    The table's business columns are re-typed first (a warehouse hands dates back as objects or
    timestamps depending on the driver); a value that does not fit its type fails `type:<type>`. Columns
    absent from the table are not invented: `column_exists` fails for them. Lineage columns are ignored.
    """
    if isinstance(today, datetime):
        today = today.date()
    frame = _prepare(table)
    present = [c for c in contract.columns if c.name in frame.columns]
    typed, failed_types = coerce(contract, frame, present)
    if all(k in typed.columns for k in contract.key):
        keys = _keys(contract, typed, frame)
    else:
        keys = pd.Series("", index=typed.index, dtype=object)

    def summary_row(rule: str, column: str, rows: Collection[int], examples: list[Any]) -> dict[str, Any]:
        texts: list[str] = []
        for value in examples:
            text = as_text(value)
            if text and text not in texts:
                texts.append(text)
            if len(texts) == EXAMPLES:
                break
        return {"rule": rule, "column": column, "success": not rows, "unexpected_count": len(rows), "examples": texts}

    def cells(column: str, rows: Collection[int]) -> list[Any]:
        """Offending values of some rows; the row keys when the value itself says nothing (missing, key)."""
        picked = list(rows)[: EXAMPLES * 20]
        if column in frame.columns and column not in (key_label(contract),):
            values = [frame[column].iat[r] for r in picked]
            if any(as_text(v) for v in values):
                return values
        return [keys.iat[r] for r in picked]

    summary: list[dict[str, Any]] = []
    for column in present:
        rows = np.flatnonzero(failed_types[column.name].to_numpy()).tolist()
        summary.append(summary_row(type_rule(column.type), column.name, rows, cells(column.name, rows)))

    suite = build_suite(contract, _relevant_references(contract, typed, references), today=today)
    outcomes = _run_suite(suite, typed)
    errors: list[str] = []
    for outcome in outcomes:
        if outcome.rule not in TABLE_RULES and any(n not in typed.columns for n in outcome.column.split("|")):
            continue  # the missing column is reported once, by column_exists
        row = summary_row(outcome.rule, outcome.column, outcome.rows, cells(outcome.column, outcome.rows))
        row["success"] = outcome.success
        if outcome.error is not None:
            errors.append(f"rule {outcome.rule} on {outcome.column} could not be evaluated: {outcome.error}")
            row["unexpected_count"] = None
        elif outcome.rule in TABLE_RULES:
            row["unexpected_count"] = 0 if outcome.success else None
        elif outcome.unexpected_count is not None:
            row["unexpected_count"] = int(outcome.unexpected_count)
        summary.append(row)

    all_rows = pd.Series(True, index=typed.index)
    list_failures = _list_rule_failures(contract, typed, references, all_rows, cascade=False)
    for rule in list_rules(contract):
        if (rule.rule, rule.column) in list_failures:  # absent column or nothing to resolve against: skipped
            bad = list_failures[(rule.rule, rule.column)]
            summary.append(summary_row(rule.rule, rule.column, list(bad), list(bad.values())))

    frame_summary = pd.DataFrame(summary, columns=SUMMARY_COLUMNS)
    # failures first (stable: contract order within each group), so a truncated preview shows them
    frame_summary = frame_summary.sort_values("success", kind="stable").reset_index(drop=True)
    frame_summary["unexpected_count"] = frame_summary["unexpected_count"].astype("Int64")
    frame_summary["success"] = frame_summary["success"].astype(bool)
    return TableValidation(
        success=bool(frame_summary["success"].all()) and not errors,
        rows=len(frame),
        summary=frame_summary,
        expectations_evaluated=len(outcomes),
        expectations_failed=sum(not o.success for o in outcomes),
        errors=errors,
    )
