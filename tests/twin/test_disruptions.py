"""Each disruption changes exactly what it names, on a tiny landscape whose numbers are checked by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd

from demand_control.twin.demand import build_world
from demand_control.twin.engine import ANNOUNCE_DAY, Twin
from demand_control.twin.scenario import DemandSpike, NewSku, Shortfall, SupplierDelay, SupplierOutage, parse_scenario
from tests.twin.landscapes import AS_OF, scenario, world

PURCHASES = [
    {"po_id": "PO-1", "line_no": 1, "supplier_id": "SUP-001", "sku": "SKU-000001", "location_id": "DC-01", "qty_open": 100.0,
     "order_date": pd.Timestamp(AS_OF) - pd.Timedelta(days=3), "expected_date": pd.Timestamp(AS_OF) + pd.Timedelta(days=10), "confirmed_date": pd.NaT, "status": "sent"},
    {"po_id": "PO-2", "line_no": 1, "supplier_id": "SUP-001", "sku": "SKU-000002", "location_id": "DC-01", "qty_open": 50.0,
     "order_date": pd.Timestamp(AS_OF) - pd.Timedelta(days=3), "expected_date": pd.Timestamp(AS_OF) + pd.Timedelta(days=12), "confirmed_date": pd.NaT, "status": "confirmed"},
    {"po_id": "PO-3", "line_no": 1, "supplier_id": "SUP-002", "sku": "SKU-000001", "location_id": "DC-01", "qty_open": 30.0,
     "order_date": pd.Timestamp(AS_OF) - pd.Timedelta(days=3), "expected_date": pd.Timestamp(AS_OF) + pd.Timedelta(days=11), "confirmed_date": pd.NaT, "status": "sent"},
]


def twin_with(disruption) -> Twin:  # noqa: ANN001
    sc = scenario(weeks=4, disruptions=[disruption] if disruption else [])
    return Twin(world(28, on_hand=[0.0, 0.0], lead=[7.0, 7.0], daily=[0.0, 0.0], purchases=PURCHASES), sc, "order_point", "O")


def state(twin: Twin) -> pd.DataFrame:
    po = twin.po.frame()
    return po.assign(due=twin.due_day(np.arange(twin.po.n)), po_id=twin.po_id)[["po_id", "arrival_day", "deliver", "qty_open", "due"]].set_index("po_id")


def test_supplier_delay_moves_only_that_suppliers_lines_and_tells_the_erp() -> None:
    base, hit = twin_with(None), twin_with(SupplierDelay(type="supplier_delay", supplier="SUP-001", start_week=0, days=5, share=1.0))
    for t in (base, hit):
        known = [t.disruptions_of(d) for d in range(ANNOUNCE_DAY + 1)]
    before, after = state(base), state(hit)
    assert (after.loc[["PO-1", "PO-2"], "arrival_day"] == before.loc[["PO-1", "PO-2"], "arrival_day"] + 5).all()
    assert after.loc[["PO-1", "PO-2"], "due"].tolist() == [15, 17]  # confirmed date = the one it had + 5
    assert after.loc["PO-3"].equals(before.loc["PO-3"])
    assert [set(k.series) for k in known[ANNOUNCE_DAY]] == [{0, 1}] and known[0] == []


def test_outage_pushes_what_falls_due_in_it_and_what_is_ordered_during_it() -> None:
    hit = twin_with(SupplierOutage(type="supplier_outage", supplier="SUP-001", start_week=0, weeks=2))
    before = state(twin_with(None))
    for d in range(ANNOUNCE_DAY + 1):
        hit.disruptions_of(d)
    after = state(hit)
    end = ANNOUNCE_DAY + 14
    assert after.loc[["PO-1", "PO-2"], "arrival_day"].between(end, end + 3).all()
    assert after.loc["PO-3"].equals(before.loc["PO-3"])
    placed = hit.place_po(np.array([0]), np.array([10.0]), ANNOUNCE_DAY + 1, origin=1)
    assert hit.po["arrival_day"][placed][0] >= end and hit.due_day(placed)[0] >= end


def test_shortfall_cuts_only_that_suppliers_open_quantities() -> None:
    hit = twin_with(Shortfall(type="shortfall", supplier="SUP-001", start_week=0, share=0.4))
    before = state(twin_with(None))
    for d in range(ANNOUNCE_DAY + 1):
        hit.disruptions_of(d)
    after = state(hit)
    assert after.loc[["PO-1", "PO-2"], "deliver"].tolist() == [60.0, 30.0]
    assert after.loc[["PO-1", "PO-2"], "qty_open"].tolist() == [60.0, 30.0]
    assert after.loc[["PO-1", "PO-2"], "arrival_day"].equals(before.loc[["PO-1", "PO-2"], "arrival_day"])
    assert after.loc["PO-3"].equals(before.loc["PO-3"])


SMALL = """
seed: 4
weeks: 6
skus: 12
locations: 2
history_weeks: 30
planner: {capacity_per_team_per_day: 3, response_hours: 4}
"""


def test_demand_spike_multiplies_only_its_category_in_its_weeks() -> None:
    base = build_world(parse_scenario(SMALL))
    cat = base.series["category"].iloc[base.lines["series"].mode().iloc[0]]
    spiked = build_world(parse_scenario(SMALL).model_copy(update={"disruptions": [DemandSpike(type="demand_spike", category=cat, start_week=2, weeks=2, factor=2.0)]}))
    a, b = base.lines.set_index(["order_id", "line_no"]), spiked.lines.set_index(["order_id", "line_no"])
    assert a.index.equals(b.index)
    # Lines drawn for the run (the landscape's order book was placed before the surge).
    drawn = a.index.get_level_values("order_id").str.startswith("SO-T")
    hit = (base.series["category"].to_numpy()[a["series"]] == cat) & a["promise_day"].between(14, 27).to_numpy() & drawn
    assert hit.any()
    np.testing.assert_allclose(b.loc[hit, "qty"].to_numpy(), np.ceil(a.loc[hit, "qty"].to_numpy() * 2.0 * base.series["scale"].to_numpy()[a.loc[hit, "series"]] - 1e-9) / base.series["scale"].to_numpy()[a.loc[hit, "series"]])
    assert a.loc[~hit].equals(b.loc[~hit].drop(columns=[], errors="ignore").assign(spike=a.loc[~hit, "spike"]))
    assert (b.loc[hit, "spike"] == 0).all() and spiked.spike_known_day[0] == int(b.loc[hit, "order_day"].min())


def test_new_sku_adds_its_sku_locations_and_their_orders_and_nothing_else() -> None:
    base = build_world(parse_scenario(SMALL))
    cat = base.series["category"].iloc[0]
    grown = build_world(parse_scenario(SMALL).model_copy(update={"disruptions": [NewSku(type="new_sku", category=cat, start_week=2, count=2)]}))
    assert len(grown.series) == len(base.series) + 2 * 2
    new = grown.series.iloc[len(base.series):]
    assert (new["listed_day"] == 14).all() and (new["category"] == cat).all() and new["sku"].nunique() == 2
    old = grown.lines[grown.lines["series"] < len(base.series)].drop(columns=["line", "order_id"]).reset_index(drop=True)
    mine = base.lines.drop(columns=["line", "order_id"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(old, mine)
    fresh = grown.lines[grown.lines["series"] >= len(base.series)]
    assert len(fresh) > 0 and (fresh["order_day"] >= 14).all() and (fresh["promise_day"] >= 14).all()
