"""The sample landscape: deterministic bytes, every contract rule, and the demand patterns it promises."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from demand_control.sample import generate_landscape, write_landscape
from demand_control.sample.catalogue import CATEGORIES
from demand_control.schema.contracts import (
    CONTRACTS,
    EARLIEST_PLAUSIBLE_DATE,
    FILE_DROP_OBJECTS,
    MAX_FUTURE_DAYS,
)

AS_OF = dt.date(2025, 6, 4)  # a Wednesday
SKUS, LOCATIONS, WEEKS = 200, 3, 110
TARGET_MIX = {"smooth": 0.40, "erratic": 0.20, "intermittent": 0.25, "lumpy": 0.15}


@pytest.fixture(scope="module")
def landscape() -> dict[str, pd.DataFrame]:
    return generate_landscape(SKUS, LOCATIONS, WEEKS, seed=11, as_of=AS_OF)


@pytest.fixture(scope="module")
def panel(landscape) -> np.ndarray:
    """demand_history as a (SKU-location, week) matrix, checked to be dense and ordered."""
    history = landscape["demand_history"]
    assert len(history) == SKUS * LOCATIONS * WEEKS
    return history["qty"].to_numpy().reshape(SKUS * LOCATIONS, WEEKS)


def classify(panel: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Syntetos-Boylan class per row: ADI = mean gap between non-zero weeks, CV² of the non-zero sizes."""
    nonzero = panel > 0
    n = nonzero.sum(axis=1)
    weeks = np.arange(panel.shape[1])
    first = np.where(nonzero, weeks, panel.shape[1]).min(axis=1)
    last = np.where(nonzero, weeks, -1).max(axis=1)
    adi = np.where(n >= 2, (last - first) / np.maximum(n - 1, 1), np.inf)
    sizes = np.where(nonzero, panel, 0.0)
    mean = sizes.sum(axis=1) / np.maximum(n, 1)
    var = (sizes**2).sum(axis=1) / np.maximum(n, 1) - mean**2
    cv2 = var / np.maximum(mean, 1e-12) ** 2
    names = np.where(adi < 1.32, np.where(cv2 < 0.49, "smooth", "erratic"), np.where(cv2 < 0.49, "intermittent", "lumpy"))
    return names, adi, cv2


def lag_correlation(panel: np.ndarray, lag: int) -> np.ndarray:
    a = panel[:, lag:] - panel[:, lag:].mean(axis=1, keepdims=True)
    b = panel[:, :-lag] - panel[:, :-lag].mean(axis=1, keepdims=True)
    return (a * b).sum(axis=1) / np.sqrt((a**2).sum(axis=1) * (b**2).sum(axis=1) + 1e-12)


def as_dates(series: pd.Series) -> pd.Series:
    return pd.to_datetime(series).dt.date


# Determinism --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_same_arguments_give_byte_identical_files(tmp_path: Path, fmt: str) -> None:
    first = write_landscape(generate_landscape(60, 2, 60, seed=5, as_of=AS_OF), tmp_path / "a", fmt)
    second = write_landscape(generate_landscape(60, 2, 60, seed=5, as_of=AS_OF), tmp_path / "b", fmt)
    assert sorted(first) == sorted(FILE_DROP_OBJECTS)
    for name, path in first.items():
        assert path.name == f"{name}.{fmt}"
        assert path.read_bytes() == second[name].read_bytes(), name


def test_another_seed_gives_another_history() -> None:
    a = generate_landscape(60, 2, 60, seed=5, as_of=AS_OF)["demand_history"]
    b = generate_landscape(60, 2, 60, seed=6, as_of=AS_OF)["demand_history"]
    assert not np.array_equal(a["qty"].to_numpy(), b["qty"].to_numpy())


def test_files_read_back_as_generated(tmp_path: Path, landscape) -> None:
    parquet = write_landscape(landscape, tmp_path / "p", "parquet")
    csv = write_landscape(landscape, tmp_path / "c", "csv")
    for name, frame in landscape.items():
        from_parquet = pd.read_parquet(parquet[name])
        from_csv = pd.read_csv(csv[name], dtype=str, keep_default_na=False)
        assert list(from_parquet.columns) == list(frame.columns) == list(from_csv.columns)
        assert len(from_parquet) == len(frame) == len(from_csv)
        for col in CONTRACTS[name].columns:
            if col.type == "date":
                iso = as_dates(frame[col.name]).map(lambda d: "" if pd.isna(d) else d.isoformat())
                assert (from_csv[col.name] == iso.to_numpy()).all(), (name, col.name)
                assert from_parquet[col.name].map(lambda d: "" if pd.isna(d) else d.isoformat()).equals(iso)
            elif col.type == "string":
                assert from_parquet[col.name].dtype == object  # plain strings, not categoricals
                expected = frame[col.name].astype(object).where(frame[col.name].notna(), None)
                assert from_parquet[col.name].equals(expected), (name, col.name)
            else:
                np.testing.assert_array_equal(from_parquet[col.name].to_numpy(), frame[col.name].to_numpy())


# Contract rules -----------------------------------------------------------------------------------------


def test_every_frame_has_exactly_the_contract_columns_and_types(landscape) -> None:
    assert list(landscape) == list(FILE_DROP_OBJECTS)
    for name, frame in landscape.items():
        contract = CONTRACTS[name]
        assert list(frame.columns) == contract.column_names, name
        assert len(frame) > 0, name
        for col in contract.columns:
            s = frame[col.name]
            if col.type == "integer":
                assert s.dtype == np.int64, (name, col.name)
            elif col.type == "float":
                assert s.dtype == np.float64, (name, col.name)
            elif col.type == "boolean":
                assert s.dtype == bool, (name, col.name)
            elif col.type == "date":
                assert pd.api.types.is_datetime64_any_dtype(s.dtype), (name, col.name)
                assert (s.dropna() == s.dropna().dt.normalize()).all(), (name, col.name)
            else:
                assert all(isinstance(v, str) for v in s.dropna().unique()), (name, col.name)


def test_keys_unique_and_required_columns_filled(landscape) -> None:
    for name, frame in landscape.items():
        contract = CONTRACTS[name]
        assert not frame.duplicated(list(contract.key)).any(), name
        for col in contract.required_columns:
            assert frame[col].notna().all(), (name, col)
            if frame[col].dtype == object:
                assert (frame[col] != "").all(), (name, col)


def test_values_within_contract_limits(landscape) -> None:
    latest = AS_OF + dt.timedelta(days=MAX_FUTURE_DAYS)
    for name, frame in landscape.items():
        for col in CONTRACTS[name].columns:
            s = frame[col.name].dropna()
            if col.allowed:
                assert set(s.astype(str)) <= set(col.allowed), (name, col.name)
            if col.min_value is not None:
                assert (s >= col.min_value).all(), (name, col.name)
            if col.max_value is not None:
                assert (s <= col.max_value).all(), (name, col.name)
            if col.type == "date":
                days = as_dates(s)
                assert (days >= EARLIEST_PLAUSIBLE_DATE).all() and (days <= latest).all(), (name, col.name)
                if col.not_in_future:
                    assert (days <= AS_OF).all(), (name, col.name)


def test_references_resolve(landscape) -> None:
    for name, frame in landscape.items():
        for col in CONTRACTS[name].columns:
            target = col.references or col.list_of
            if not target:
                continue
            obj, key = target.split(".")
            known = set(landscape[obj][key].astype(str))
            values = frame[col.name].dropna().astype(str)
            if col.list_of:
                values = pd.Series([item for v in values for item in v.split(";")])
                assert len(values) > 0, (name, col.name)
            missing = set(values) - known
            assert not missing, (name, col.name, sorted(missing)[:5])


def test_history_is_a_dense_weekly_panel_ending_before_as_of(landscape) -> None:
    history = landscape["demand_history"]
    periods = np.sort(history["period_start"].unique())
    assert len(periods) == WEEKS >= 104
    days = pd.DatetimeIndex(periods)
    assert (days.dayofweek == 0).all()
    assert (np.diff(periods) == np.timedelta64(7, "D")).all()
    # The last full week (Monday-Sunday) before a Wednesday as_of began nine days earlier.
    assert days[-1].date() == dt.date(2025, 5, 26)
    counts = history.groupby(["sku", "location_id"], observed=True).size()
    assert len(counts) == SKUS * LOCATIONS and (counts == WEEKS).all()
    assert (history["qty"] == 0).mean() > 0.1  # zero weeks are emitted
    whole = (history["qty"] == history["qty"].round()).mean()
    assert whole > 0.8  # mostly whole units (weighed goods in tenths of a kg)


# Realism ------------------------------------------------------------------------------------------------


def test_master_data_looks_like_a_distributor(landscape) -> None:
    product = landscape["product"]
    assert 8 <= product["category"].nunique() <= 12
    assert (product["unit_price"] > product["unit_cost"]).all()
    assert product["sku"].str.fullmatch(r"SKU-\d{6}").all()
    with_subs = product["substitute_skus"].dropna()
    assert 0.08 < len(with_subs) / len(product) < 0.25
    category = product.set_index("sku")["category"]
    for sku, subs in with_subs.items():
        own = product.loc[sku, "sku"]
        items = subs.split(";")
        assert 1 <= len(items) <= 2 and own not in items
        assert (category[items] == category[own]).all()
    assert 0 < (~product["active"]).sum() < 0.1 * len(product)

    location = landscape["location"]
    assert list(location["location_id"]) == ["DC-01", "DC-02", "DC-03"] and (location["type"] == "dc").all()
    tiers = landscape["customer"]["tier"].value_counts(normalize=True)
    assert 0.03 < tiers["strategic"] < 0.2 and 0.2 < tiers["key"] < 0.4 and tiers["standard"] > 0.45
    supplier = landscape["supplier"]
    assert supplier["lead_time_mean_days"].between(7, 60).all()
    assert supplier["reliability"].between(0.6, 0.99).all()


def test_sourcing_has_one_primary_lane_per_sku_location(landscape) -> None:
    sourcing = landscape["sourcing"]
    primary = sourcing[sourcing["primary"]]
    assert len(primary) == SKUS * LOCATIONS
    assert not primary.duplicated(["sku", "location_id"]).any()
    assert 0 < (~sourcing["primary"]).sum() < len(primary)
    cost = landscape["product"].set_index("sku")["unit_cost"]
    ratio = primary["unit_cost"] / cost[primary["sku"]].to_numpy()
    assert ratio.between(0.9, 1.1).all()
    assert ((sourcing["moq"] % sourcing["pack_size"]) == 0).all()


def test_stock_orders_and_purchase_orders_are_consistent(landscape) -> None:
    stock = landscape["inventory_position"]
    assert len(stock) == SKUS * LOCATIONS
    assert (stock["allocated"] <= stock["on_hand"]).all()
    assert (stock["on_hand"] == 0).any() and (stock["in_transit"] > 0).any()

    orders = landscape["customer_order_line"]
    first_lines = orders.groupby("order_id")["line_no"].agg(["min", "max", "size"])
    assert (first_lines["min"] == 1).all() and (first_lines["max"] == first_lines["size"]).all()
    promise = as_dates(orders["promise_date"])
    assert ((promise > AS_OF) & (promise <= AS_OF + dt.timedelta(weeks=7))).mean() > 0.85

    po = landscape["purchase_order_line"]
    lanes = set(map(tuple, landscape["sourcing"][["sku", "location_id", "supplier_id"]].to_numpy()))
    assert set(map(tuple, po[["sku", "location_id", "supplier_id"]].to_numpy())) <= lanes
    assert (po["expected_date"] > po["order_date"]).all()
    confirmed = po.drop_duplicates("po_id")["confirmed_date"].notna().mean()
    assert 0.55 < confirmed < 0.85
    assert (po["confirmed_date"] > po["expected_date"]).any()  # some suppliers slipped
    assert (po.loc[po["confirmed_date"].isna(), "status"].isin(["draft", "sent"])).all()

    pipeline = landscape["pipeline_opportunity"]
    expected = as_dates(pipeline["expected_date"])
    assert ((expected > AS_OF) & (expected <= AS_OF + dt.timedelta(weeks=12))).all()
    assert (pipeline.loc[pipeline["stage"] == "won", "probability"] == 1).all()


# Demand patterns ----------------------------------------------------------------------------------------


def test_demand_class_mix_is_as_designed(panel) -> None:
    names, _, _ = classify(panel)
    share = pd.Series(names).value_counts(normalize=True)
    for cls, target in TARGET_MIX.items():
        assert share.get(cls, 0.0) >= 0.08, (cls, share.to_dict())
        assert abs(share.get(cls, 0.0) - target) < 0.08, (cls, share.to_dict())


def test_seasonal_categories_repeat_yearly(landscape, panel) -> None:
    r = lag_correlation(panel, 52)
    assert (r > 0.5).mean() > 0.05
    seasonal = {c.name for c in CATEGORIES if c.season_peak is not None}
    in_season_category = landscape["product"]["category"].isin(seasonal).to_numpy().repeat(LOCATIONS)
    names, _, _ = classify(panel)
    smooth = names == "smooth"
    assert r[smooth & in_season_category].mean() - r[smooth & ~in_season_category].mean() > 0.2
    assert (r[smooth & ~in_season_category] > 0.5).mean() < 0.05


def test_promotions_lift_demand_for_a_few_weeks(panel) -> None:
    names, _, _ = classify(panel)
    all_smooth = (names.reshape(SKUS, LOCATIONS) == "smooth").all(axis=1)
    national = panel.reshape(SKUS, LOCATIONS, WEEKS).sum(axis=1)[all_smooth]
    baseline = pd.DataFrame(national.T).rolling(13, center=True, min_periods=7).median().to_numpy().T
    lifted = national > 1.6 * baseline
    runs = lifted[:, 1:] & lifted[:, :-1]  # at least two consecutive weeks
    assert runs.any(axis=1).sum() >= 3
    assert runs.any(axis=1).mean() < 0.9  # promotions are occasional, not the norm


# Stock and supply ---------------------------------------------------------------------------------------


def test_stock_and_open_pos_follow_a_replenishment_process_that_mostly_works() -> None:
    """Stock and open POs look like a weekly-review (R, s, S) process: nearly every selling SKU-location has
    on hand + in transit + open POs covering demand over lead time + review week, and an open PO when its
    shelf alone does not cover the lead time; a few are stocked out or overstocked for the exceptions."""
    weeks = 60
    frames = generate_landscape(400, 3, weeks, seed=11, as_of=AS_OF)
    keys = ["sku", "location_id"]
    stock = frames["inventory_position"]
    index = pd.MultiIndex.from_frame(stock[keys])
    rate = frames["demand_history"]["qty"].to_numpy().reshape(-1, weeks)[:, -13:].mean(axis=1)  # per week
    lanes = frames["sourcing"][frames["sourcing"]["primary"]].set_index(keys)
    lead_weeks = lanes["lead_time_days"].reindex(index).to_numpy() / 7.0
    po = frames["purchase_order_line"]
    on_order = po.groupby(keys)["qty_open"].sum().reindex(index, fill_value=0.0).to_numpy()
    active = frames["product"].set_index("sku")["active"].reindex(stock["sku"]).to_numpy()
    selling = active & (rate > 0)
    assert selling.sum() > 1000

    shelf = stock["on_hand"].to_numpy() + stock["in_transit"].to_numpy()
    position = shelf - stock["allocated"].to_numpy() + on_order
    covered = (position >= rate * (lead_weeks + 1.0))[selling].mean()
    assert 0.88 < covered < 0.99, covered  # the old generator: about 0.7
    short_shelf = selling & (shelf < rate * lead_weeks)
    assert ((on_order > 0)[short_shelf]).mean() > 0.8  # the old generator: about 0.5
    # Open POs go back about one lead time (plus a few overdue ones), each expected one lead time after its order.
    lead_of = lanes["lead_time_days"].reindex(pd.MultiIndex.from_frame(po[keys])).to_numpy()
    order_age = (pd.Timestamp(AS_OF) - po["order_date"]).dt.days.to_numpy()
    assert (order_age < lead_of + 7 * 3 + 7).all()
    assert ((po["expected_date"] - po["order_date"]).dt.days.to_numpy() == np.rint(lead_of)).all()

    # The planted trouble is there, at modest rates.
    available = stock["on_hand"].to_numpy() - stock["allocated"].to_numpy()
    assert 0.02 < (available <= 0)[active].mean() < 0.07
    weeks_of_cover = stock["on_hand"].to_numpy()[selling] / rate[selling]
    assert 0.04 < (weeks_of_cover >= 15).mean() < 0.15
    assert (po["expected_date"] < pd.Timestamp(AS_OF)).any()  # overdue lines
    assert (po["status"] == "draft").any() and (po["status"] == "partial").any()
