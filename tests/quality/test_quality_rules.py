"""Row-level and structural rules of the contract suites (Great Expectations 1.x, no Dagster).

Every test feeds a small hand-made frame with a crafted bad row and checks both sides: the bad row is
quarantined under the right rule with the right offending value, and every good row survives.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from demand_control.schema.contracts import CONTRACTS, EARLIEST_PLAUSIBLE_DATE, MAX_FUTURE_DAYS
from demand_control.quality import build_suite, normalise, validate_feed, validate_table
from demand_control.quality.validation import QUARANTINE_COLUMNS, _exception_message, _run_suite

TODAY = date(2024, 6, 3)

PRODUCT = CONTRACTS["product"]
INVENTORY = CONTRACTS["inventory_position"]
ORDER_LINE = CONTRACTS["customer_order_line"]
PO_LINE = CONTRACTS["purchase_order_line"]
DEMAND = CONTRACTS["demand_history"]
SUPPLIER = CONTRACTS["supplier"]
SUPPLIER_EVENT = CONTRACTS["supplier_event"]

REFS = {
    "product.sku": {"SKU-1", "SKU-2", "SKU-3"},
    "location.location_id": {"DC1", "DC2"},
    "customer.customer_id": {"C1", "C2"},
    "supplier.supplier_id": {"V1"},
}


def inventory_csv(**overrides: list[str]) -> pd.DataFrame:
    """Four good inventory rows as a CSV reader delivers them (all text), with columns overridden."""
    data = {
        "sku": ["SKU-1", "SKU-2", "SKU-3", "SKU-1"],
        "location_id": ["DC1", "DC1", "DC1", "DC2"],
        "as_of": ["2024-06-01"] * 4,
        "on_hand": ["10", "0", "3.5", "7"],
        "allocated": ["1", "0", "0", "2"],
        "in_transit": ["0", "5", "0", "1"],
    }
    data.update(overrides)
    return pd.DataFrame(data)


def order_lines_csv(**overrides: list[str]) -> pd.DataFrame:
    data = {
        "order_id": ["SO1", "SO1", "SO2", "SO3"],
        "line_no": ["1", "2", "1", "1"],
        "customer_id": ["C1", "C1", "C2", "C2"],
        "sku": ["SKU-1", "SKU-2", "SKU-3", "SKU-1"],
        "location_id": ["DC1", "DC1", "DC2", "DC2"],
        "qty_open": ["5", "2.5", "1", "12"],
        "promise_date": ["2024-06-10", "2024-06-12", "2024-07-01", "2024-06-05"],
        "priority": ["1", "3", "5", "2"],
        "status": ["open", "partial", "backordered", "on_hold"],
    }
    data.update(overrides)
    return pd.DataFrame(data)


def keys_of(frame: pd.DataFrame, contract) -> set[tuple]:
    return set(frame[list(contract.key)].astype(str).itertuples(index=False, name=None))


def assert_quarantined(result, *, rule: str, column: str, offending: str, key: str) -> None:
    q = result.quarantine
    hits = q[(q["rule"] == rule) & (q["column"] == column)]
    assert len(hits) == 1, f"expected one {rule} on {column}, quarantine is\n{q}"
    assert hits.iloc[0]["offending_value"] == offending
    assert hits.iloc[0]["key"] == key


def assert_only_row_out(result, contract, raw: pd.DataFrame, bad_position: int) -> None:
    """Every row except `bad_position` is staged (same keys, same count) and the feed is not blocked."""
    assert result.structural_errors == []
    assert result.rows_in == len(raw)
    expected = raw.drop(index=bad_position)
    assert len(result.good) == len(expected)
    assert keys_of(result.good, contract) == keys_of(expected, contract)




def test_suite_is_generated_from_the_contract_with_rule_meta():
    suite = build_suite(ORDER_LINE, REFS, today=TODAY)
    rules = {(e.meta["rule"], e.meta["column"]) for e in suite.expectations}
    assert {("column_exists", c) for c in ORDER_LINE.column_names} <= rules
    assert {("not_null", c) for c in ORDER_LINE.required_columns} <= rules
    assert ("min_value", "qty_open") in rules
    assert ("min_value", "priority") in rules and ("max_value", "priority") in rules
    assert ("allowed_values", "status") in rules
    assert ("references:product.sku", "sku") in rules
    assert ("references:customer.customer_id", "customer_id") in rules
    assert ("plausible_date", "promise_date") in rules
    assert ("unique_key", "order_id|line_no") in rules
    types = {e.meta["rule"]: type(e).__name__ for e in suite.expectations}
    assert types["unique_key"] == "ExpectCompoundColumnsToBeUnique"
    assert types["references:product.sku"] == "ExpectColumnValuesToBeInSet"


def test_suite_skips_reference_rules_without_a_set_and_bounds_dates():
    suite = build_suite(PO_LINE, {"product.sku": ["SKU-1"]}, today=TODAY)
    by_rule = {(e.meta["rule"], e.meta["column"]): e for e in suite.expectations}
    assert ("references:product.sku", "sku") in by_rule
    assert not any(r.startswith("references:supplier") for r, _ in by_rule)
    order_date = by_rule[("plausible_date", "order_date")]
    assert (order_date.min_value, order_date.max_value) == (EARLIEST_PLAUSIBLE_DATE, TODAY)  # not_in_future
    expected = by_rule[("plausible_date", "expected_date")]
    assert expected.max_value == TODAY + timedelta(days=MAX_FUTURE_DAYS)
    single = build_suite(PRODUCT, {}, today=TODAY)
    assert [type(e).__name__ for e in single.expectations if e.meta["rule"] == "unique_key"] == [
        "ExpectColumnValuesToBeUnique"
    ]




def test_negative_on_hand_is_quarantined_as_min_value():
    raw = inventory_csv(on_hand=["10", "-4", "3.5", "7"])
    result = validate_feed(INVENTORY, raw, REFS, TODAY)
    assert_quarantined(result, rule="min_value", column="on_hand", offending="-4", key="SKU-2|DC1|2024-06-01")
    assert len(result.quarantine) == 1
    assert_only_row_out(result, INVENTORY, raw, 1)
    assert result.expectations_failed == 1


def test_unknown_sku_in_order_line_breaks_the_product_reference():
    raw = order_lines_csv(sku=["SKU-1", "SKU-404", "SKU-3", "SKU-1"])
    result = validate_feed(ORDER_LINE, raw, REFS, TODAY)
    assert_quarantined(result, rule="references:product.sku", column="sku", offending="SKU-404", key="SO1|2")
    assert_only_row_out(result, ORDER_LINE, raw, 1)


def test_duplicate_key_keeps_the_first_occurrence():
    raw = order_lines_csv(order_id=["SO1", "SO1", "SO2", "SO1"], line_no=["1", "2", "1", "1"])
    result = validate_feed(ORDER_LINE, raw, REFS, TODAY)
    assert_quarantined(result, rule="unique_key", column="order_id|line_no", offending="SO1|1", key="SO1|1")
    assert_only_row_out(result, ORDER_LINE, raw, 3)
    first = result.good[(result.good["order_id"] == "SO1") & (result.good["line_no"] == 1)]
    assert first["qty_open"].tolist() == [5.0]  # the first delivered row won, not the later one (12)


def test_duplicate_key_detected_after_typing():
    # "01" and "1" are the same integer line number
    raw = order_lines_csv(order_id=["SO1", "SO1", "SO2", "SO1"], line_no=["1", "2", "1", "01"])
    result = validate_feed(ORDER_LINE, raw, REFS, TODAY)
    assert result.quarantine["rule"].tolist() == ["unique_key"]
    assert_only_row_out(result, ORDER_LINE, raw.assign(line_no=["1", "2", "1", "1"]), 3)


def test_impossible_date_text_is_a_type_failure():
    raw = order_lines_csv(promise_date=["2024-06-10", "2024-13-45", "2024-07-01", "2024-06-05"])
    result = validate_feed(ORDER_LINE, raw, REFS, TODAY)
    assert_quarantined(result, rule="type:date", column="promise_date", offending="2024-13-45", key="SO1|2")
    # reported once, as the type failure, not a second time as not_null
    assert len(result.quarantine) == 1
    assert_only_row_out(result, ORDER_LINE, raw, 1)


def test_future_snapshot_date_is_implausible():
    tomorrow = (TODAY + timedelta(days=1)).isoformat()
    raw = inventory_csv(as_of=["2024-06-01", "2024-06-01", tomorrow, "2024-06-01"])
    result = validate_feed(INVENTORY, raw, REFS, TODAY)
    assert_quarantined(result, rule="plausible_date", column="as_of", offending=tomorrow, key=f"SKU-3|DC1|{tomorrow}")
    assert_only_row_out(result, INVENTORY, raw, 2)


def test_dates_before_the_earliest_plausible_date_or_too_far_ahead():
    too_far = (TODAY + timedelta(days=MAX_FUTURE_DAYS + 1)).isoformat()
    raw = order_lines_csv(promise_date=["1999-12-31", "2024-06-12", too_far, "2024-06-05"])
    result = validate_feed(ORDER_LINE, raw, REFS, TODAY)
    q = result.quarantine
    assert q["rule"].tolist() == ["plausible_date", "plausible_date"]
    assert q["offending_value"].tolist() == ["1999-12-31", too_far]
    assert keys_of(result.good, ORDER_LINE) == {("SO1", "2"), ("SO3", "1")}


def test_status_outside_the_allowed_set():
    raw = order_lines_csv(status=["open", "partial", "shipped", "on_hold"])
    result = validate_feed(ORDER_LINE, raw, REFS, TODAY)
    assert_quarantined(result, rule="allowed_values", column="status", offending="shipped", key="SO2|1")
    assert_only_row_out(result, ORDER_LINE, raw, 2)


def test_non_numeric_quantity_is_a_float_type_failure():
    raw = order_lines_csv(qty_open=["5", "2.5", "1", "twelve"])
    result = validate_feed(ORDER_LINE, raw, REFS, TODAY)
    assert_quarantined(result, rule="type:float", column="qty_open", offending="twelve", key="SO3|1")
    assert len(result.quarantine) == 1
    assert_only_row_out(result, ORDER_LINE, raw, 3)


def test_null_required_column():
    raw = order_lines_csv(customer_id=["C1", "", "C2", "C2"])
    result = validate_feed(ORDER_LINE, raw, REFS, TODAY)
    assert_quarantined(result, rule="not_null", column="customer_id", offending="", key="SO1|2")
    assert_only_row_out(result, ORDER_LINE, raw, 1)


def test_range_on_both_sides_and_integer_bounds():
    supplier = pd.DataFrame(
        {
            "supplier_id": ["V1", "V2", "V3"],
            "name": ["Acme", "Bolt", "Cogs"],
            "reliability": ["0.95", "1.2", "0.5"],
            "lead_time_mean_days": ["10", "", "400"],
        }
    )
    result = validate_feed(SUPPLIER, supplier, {}, TODAY)
    q = result.quarantine.sort_values("key")
    assert list(zip(q["key"], q["rule"], q["column"], q["offending_value"], strict=True)) == [
        ("V2", "max_value", "reliability", "1.2"),
        ("V3", "max_value", "lead_time_mean_days", "400"),
    ]
    assert result.good["supplier_id"].tolist() == ["V1"]
    raw = order_lines_csv(priority=["1", "3", "6", "0"])
    result = validate_feed(ORDER_LINE, raw, REFS, TODAY)
    q = result.quarantine
    assert list(zip(q["rule"], q["offending_value"], strict=True)) == [("max_value", "6"), ("min_value", "0")]
    assert keys_of(result.good, ORDER_LINE) == {("SO1", "1"), ("SO1", "2")}


def test_one_quarantine_row_per_broken_rule_and_row_reported_once():
    raw = inventory_csv(sku=["SKU-1", "SKU-9", "SKU-3", "SKU-1"], on_hand=["10", "-1", "3.5", "7"])
    result = validate_feed(INVENTORY, raw, REFS, TODAY)
    q = result.quarantine
    assert list(q.columns) == QUARANTINE_COLUMNS
    assert all(isinstance(v, str) for v in q.to_numpy().ravel())
    assert sorted(q["rule"]) == ["min_value", "references:product.sku"]
    assert set(q["object"]) == {"inventory_position"}
    assert set(q["key"]) == {"SKU-9|DC1|2024-06-01"}
    assert_only_row_out(result, INVENTORY, raw, 1)


def test_substitute_list_items_must_exist():
    raw = pd.DataFrame(
        {
            "sku": ["A", "B", "C", "D"],
            "description": ["a", "b", "c", "d"],
            "category": ["x"] * 4,
            "unit": ["each", "case", "kg", "each"],
            "unit_cost": ["1", "2", "3", "4"],
            "unit_price": ["2", "3", "4", "5"],
            "substitute_skus": ["B; C", "ZZZ;A", "", "A;B;C"],
            "active": ["true", "false", "yes", "1"],
        }
    )
    # the product feed's own SKUs resolve its substitutes (no product.sku set is passed for product)
    result = validate_feed(PRODUCT, raw, {}, TODAY)
    q = result.quarantine
    assert list(zip(q["key"], q["rule"], q["column"], q["offending_value"], strict=True)) == [
        ("A", "references:product.sku", "substitute_skus", "B"),
        ("B", "references:product.sku", "substitute_skus", "ZZZ"),
        ("D", "references:product.sku", "substitute_skus", "B"),
    ]
    # B names an unknown SKU; quarantined, it no longer resolves the lists naming it (A, D); C has no list
    assert result.good["sku"].tolist() == ["C"]
    # with an explicit product.sku set, items resolve against it
    result = validate_feed(PRODUCT, raw, {"product.sku": {"A", "B", "C", "D", "ZZZ"}}, TODAY)
    assert result.quarantine.empty and len(result.good) == 4




def test_missing_required_column_is_structural():
    raw = inventory_csv().drop(columns=["on_hand"])
    result = validate_feed(INVENTORY, raw, REFS, TODAY)
    assert len(result.structural_errors) == 1
    message = result.structural_errors[0]
    assert "on_hand" in message and "missing" in message
    assert "columns found: sku, location_id, as_of, allocated, in_transit" in message
    assert result.good.empty and list(result.good.columns) == INVENTORY.column_names
    assert result.quarantine.empty and list(result.quarantine.columns) == QUARANTINE_COLUMNS
    assert result.rows_in == 4


def test_empty_feed_is_structural():
    raw = pd.DataFrame(columns=INVENTORY.column_names)
    result = validate_feed(INVENTORY, raw, REFS, TODAY)
    assert result.good.empty
    assert len(result.structural_errors) == 1 and "empty" in result.structural_errors[0]
    assert result.rows_in == 0


def test_feed_where_every_row_is_quarantined_is_structural():
    raw = inventory_csv(location_id=["XX", "XX", "XX", "YY"])
    result = validate_feed(INVENTORY, raw, REFS, TODAY)
    assert result.good.empty
    assert len(result.quarantine) == 4
    assert any("every row" in e for e in result.structural_errors)


def test_extra_columns_dropped_and_optional_columns_added():
    raw = pd.DataFrame(
        {
            "supplier_id": ["V1", "V2"],
            "name": ["Acme", "Bolt"],
            "reliability": ["0.9", "0.8"],
            "internal_note": ["x", "y"],  # undeclared: dropped, not an error
        }
    )
    result = validate_feed(SUPPLIER, raw, {}, TODAY)
    assert result.structural_errors == [] and result.quarantine.empty
    assert list(result.good.columns) == SUPPLIER.column_names
    assert result.good["contact"].isna().all() and result.good["lead_time_mean_days"].isna().all()




def test_csv_text_is_coerced_to_contract_types():
    raw = pd.DataFrame(
        {
            "event_id": [" E1 ", "E2", "E3"],
            "supplier_id": ["V1", "V1", "V1"],
            "type": ["delay", "confirmation", "shortfall"],
            "po_id": ["PO1", "PO1", "PO2"],
            "line_no": ["1", "2", "3.0"],
            "new_date": ["2024-07-01", "", ""],
            "new_qty": ["", "", "1e2"],
            "occurred_at": ["2024-06-01T10:00:00Z", "2024-06-01 12:30:00+02:00", "2024-06-02T08:00:00"],
        }
    )
    result = validate_feed(SUPPLIER_EVENT, raw, REFS, TODAY)
    assert result.structural_errors == [] and result.quarantine.empty
    good = result.good
    assert good["event_id"].tolist() == ["E1", "E2", "E3"]  # stripped
    assert str(good["line_no"].dtype) == "Int64" and good["line_no"].tolist() == [1, 2, 3]
    assert good["new_date"].tolist()[0] == date(2024, 7, 1)
    assert good["new_date"].isna().tolist()[1:] == [True, True]
    assert good["new_qty"].dtype == np.float64 and good["new_qty"].iloc[2] == 100.0
    assert np.isnan(good["new_qty"].iloc[0])
    assert isinstance(good["occurred_at"].dtype, pd.DatetimeTZDtype) and str(good["occurred_at"].dt.tz) == "UTC"
    assert good["occurred_at"].tolist() == [
        pd.Timestamp("2024-06-01 10:00", tz="UTC"),
        pd.Timestamp("2024-06-01 10:30", tz="UTC"),
        pd.Timestamp("2024-06-02 08:00", tz="UTC"),  # naive text is taken as UTC
    ]


def test_normalise_booleans_numbers_and_strict_dates():
    raw = pd.DataFrame(
        {
            "sku": ["A", "B", "C", "D", "E", "F"],
            "description": ["d"] * 6,
            "category": ["c"] * 6,
            "unit": ["each"] * 6,
            "unit_cost": ["1", "inf", "nan", "1,5", " 2.50 ", "-0"],
            "unit_price": ["1"] * 6,
            "active": ["TRUE", "no", "Yes", "0", "maybe", "False"],
        }
    )
    typed, failures = normalise(PRODUCT, raw)
    assert str(typed["active"].dtype) == "boolean"
    assert typed["active"].tolist()[:4] == [True, False, True, False] and typed["active"].iloc[5] is np.False_
    assert pd.isna(typed["active"].iloc[4])
    assert typed["unit_cost"].iloc[0] == 1.0 and typed["unit_cost"].iloc[4] == 2.5
    got = set(zip(failures["key"], failures["rule"], failures["offending_value"], strict=True))
    assert got == {
        ("B", "type:float", "inf"),
        ("C", "type:float", "nan"),
        ("D", "type:float", "1,5"),
        ("E", "type:boolean", "maybe"),
    }
    assert list(typed.columns) == PRODUCT.column_names  # optional substitute_skus added, contract order

    dates = pd.DataFrame(
        {
            "sku": ["A"] * 5,
            "location_id": ["DC1"] * 5,
            "period_start": ["2024-13-45", "2024-02-30", "03/06/2024", "2024-6-3", "2024-06-03"],
            "qty": ["1"] * 5,
        }
    )
    typed, failures = normalise(DEMAND, dates)
    assert failures["offending_value"].tolist() == ["2024-13-45", "2024-02-30", "03/06/2024", "2024-6-3"]
    assert set(failures["rule"]) == {"type:date"}
    assert typed["period_start"].tolist()[4] == date(2024, 6, 3)


def test_typed_parquet_style_input_is_accepted():
    raw = pd.DataFrame(
        {
            "sku": ["SKU-1", "SKU-2"],
            "location_id": ["DC1", "DC2"],
            "period_start": pd.to_datetime(["2024-05-27", "2024-06-03"]),
            "qty": [4, -1],
        }
    )
    result = validate_feed(DEMAND, raw, REFS, TODAY)
    assert_quarantined(result, rule="min_value", column="qty", offending="-1", key="SKU-2|DC2|2024-06-03")
    assert result.good["period_start"].tolist() == [date(2024, 5, 27)]
    assert result.good["qty"].dtype == np.float64




def test_validate_table_passes_a_clean_staged_table():
    staged = validate_feed(ORDER_LINE, order_lines_csv(), REFS, TODAY).good
    staged = staged.assign(source_system="file_drop", loaded_at=datetime(2024, 6, 3, tzinfo=UTC))  # lineage ignored
    result = validate_table(ORDER_LINE, staged, REFS, TODAY)
    assert result.success, result.describe()
    assert result.rows == 4 and result.expectations_failed == 0 and result.failures.empty
    assert result.expectations_evaluated == len(build_suite(ORDER_LINE, REFS, today=TODAY).expectations)


def test_validate_table_fails_a_bad_table_naming_the_rule():
    staged = validate_feed(INVENTORY, inventory_csv(), REFS, TODAY).good
    bad = pd.concat([staged, staged.iloc[[0]]], ignore_index=True)  # duplicate key
    bad.loc[1, "on_hand"] = -3.0
    result = validate_table(INVENTORY, bad, REFS, TODAY)
    assert not result.success
    assert set(result.failed_rules) == {"min_value(on_hand)", "unique_key(sku|location_id|as_of)"}
    failures = result.failures.set_index("rule")
    assert failures.loc["min_value", "unexpected_count"] == 1
    assert failures.loc["min_value", "examples"] == ["-3"]
    assert failures.loc["unique_key", "examples"] == ["SKU-1|DC1|2024-06-01"]
    assert "min_value on on_hand: 1 row(s) fail" in result.describe()
    assert "\n" not in result.failure_text and "unique_key" in result.failure_text
    assert not result.summary["success"].head(2).any()  # failures lead the summary


def test_validate_table_reports_a_missing_column_once():
    staged = validate_feed(INVENTORY, inventory_csv(), REFS, TODAY).good.drop(columns=["in_transit"])
    result = validate_table(INVENTORY, staged, REFS, TODAY)
    assert not result.success
    assert result.failed_rules == ["column_exists(in_transit)"]




def test_an_expectation_gx_cannot_evaluate_is_an_error_not_a_pass():
    import great_expectations as gx
    import great_expectations.expectations as gxe

    suite = gx.ExpectationSuite(
        name="broken",
        expectations=[
            gxe.ExpectColumnValuesToBeBetween(column="a", min_value=1, meta={"rule": "min_value", "column": "a"})
        ],
    )
    (outcome,) = _run_suite(suite, pd.DataFrame({"a": ["x", "y"]}))  # text vs number: GX raises inside
    assert not outcome.success and outcome.error
    assert _exception_message({"raised_exception": False}) is None
    assert _exception_message({"m": {"raised_exception": True, "exception_message": "boom"}}) == "boom"


def test_seventy_thousand_rows_validate_in_seconds():
    n = 70_000
    rng = np.random.default_rng(7)
    skus = [f"SKU-{i:05d}" for i in range(5_000)]
    raw = pd.DataFrame(
        {
            "sku": [skus[i % 5_000] for i in range(n)],
            "location_id": [f"DC{i // 5_000}" for i in range(n)],
            "as_of": ["2024-06-01"] * n,
            "on_hand": [f"{v:.2f}" for v in rng.uniform(0, 100, n)],
            "allocated": [str(v) for v in rng.integers(0, 10, n)],
            "in_transit": ["0"] * n,
        }
    )
    raw.loc[123, "on_hand"] = "-1"
    refs = {"product.sku": set(skus), "location.location_id": {f"DC{i}" for i in range(14)}}
    validate_feed(INVENTORY, raw.head(10), refs, TODAY)  # warm the GX context
    started = time.perf_counter()
    result = validate_feed(INVENTORY, raw, refs, TODAY)
    elapsed = time.perf_counter() - started
    assert result.quarantine["rule"].tolist() == ["min_value"]
    assert len(result.good) == n - 1
    assert elapsed < 10, f"70k rows took {elapsed:.1f}s"


@pytest.mark.parametrize("name", [c for c in CONTRACTS])
def test_every_contract_builds_a_suite(name):
    contract = CONTRACTS[name]
    suite = build_suite(contract, {}, today=TODAY)
    assert all({"rule", "column"} <= set(e.meta) for e in suite.expectations)
    assert sum(e.meta["rule"] == "column_exists" for e in suite.expectations) == len(contract.columns)
