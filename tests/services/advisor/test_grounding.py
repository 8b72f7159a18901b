"""Grounding on hand-made facts: what a text may state (the facts' numbers, dates and ids, rounded as shown)
and what rejects it."""

from __future__ import annotations

from datetime import date

import pytest

from demand_control.services.advisor.grounding import grounding_problems, grounds_of

FACTS = {
    "exception_key": "supplier_delay:PO1/1", "po_id": "PO1", "units_at_risk": 35.0, "money_at_risk": 11_999.6, "on_time": 0.25,
    "window_start": date(2026, 3, 25),
    "sentence": "PO1/1 from Acme Foods: 40 units of S1 for DC1 now confirmed 25 Mar, 20 days after the expected 5 Mar.",
    "trigger_values": {"expected_date": "2026-03-05", "forecast": "10/wk"},
}
GROUNDS = grounds_of(FACTS)


@pytest.mark.parametrize("text", [
    "PO1/1 is 20 days late: 40 units of S1 for DC1 now arrive 25 Mar instead of 5 Mar.",
    "EUR 12,000 at risk; 35 units short.",          # 11,999.6 written to whole units
    "EUR 11,999.6 at risk.",
    "Acme Foods is on time 25% of the time.",      # a share written as a percentage
    "Due 2026-03-25 (March 25, 2026), first planned for 5th March.",
    "Forecast 10/wk.",                              # a figure with its unit, not an identifier
    "Acme Foods is late again; please confirm a date.",  # no figures at all
])
def test_a_text_with_only_the_facts_figures_is_grounded(text: str) -> None:
    assert grounding_problems(text, GROUNDS) == []


@pytest.mark.parametrize(("text", "problem"), [
    ("36 units short.", "number 36 is not in the case's facts"),
    ("EUR 12,500 at risk.", "number 12,500 is not in the case's facts"),
    ("EUR 11,999.65 at risk.", "number 11,999.65 is not in the case's facts"),  # more precision than the fact has
    ("Now due 26 Mar.", "date 26 Mar is not in the case's facts"),
    ("Now due 25 Mar 2027.", "date 25 Mar 2027 is not in the case's facts"),
    ("Expedite PO2/1 instead.", "identifier PO2/1 is not in the case's facts"),
    ("Approve 50,000 units now.", "number 50,000 is not in the case's facts"),
    ("Acme Foods is on time 30% of the time.", "number 30% is not in the case's facts"),
])
def test_a_figure_the_facts_do_not_hold_is_named(text: str, problem: str) -> None:
    assert grounding_problems(text, GROUNDS) == [problem]


def test_figures_from_a_lookup_count_once_added_to_the_grounds() -> None:
    text = "The supplier's other line, PO7/2, brings 80 units on 12 Apr."
    assert len(grounding_problems(text, GROUNDS)) == 3
    with_lookup = grounds_of([FACTS, {"open_lines": [{"po_id": "PO7", "line_no": 2, "entity": "PO7/2", "qty_open": 80.0, "expected_date": "2026-04-12"}]}])
    assert grounding_problems(text, with_lookup) == []
