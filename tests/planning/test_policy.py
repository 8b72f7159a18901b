"""The routing and policy engine (`planning.policy`) on small hand-made policies and frames whose answers are
computed by hand: ownership routing, SLA due times, severity, bounded autonomy, approval rights, escalation,
and the errors a bad policy file must produce."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from demand_control.planning.policy import (
    POLICY_ENV,
    Policy,
    PolicyError,
    assign_owners,
    decide_autonomy,
    escalation_steps,
    load_policy,
    may_approve,
    parse_policy,
    severity_from,
    sla_due_at,
)
from demand_control.planning.vocabulary import ACTION_TYPES, AUTO_APPROVED, AWAITING_APPROVAL, NO_ROLE

POLICY_YAML = textwrap.dedent(
    """\
    version: 1
    owners:
      fallback:
        team: team:planning
        channel: "#planning-exceptions"
      rules:
        - name: fresh
          match:
            category: [Fresh]
          owner: {team: team:buying-fresh, channel: "#buying-fresh"}
        - name: north
          match:
            region: [North]
          owner: {team: team:planning-north, channel: "#planning-north"}
        - name: strategic-stockouts
          match:
            customer_tier: [strategic]
            exception_types: [projected_stockout, order_at_risk]
          owner: {team: team:key-accounts, channel: "#key-accounts", user: maria}
        - name: sup-7-delays
          match:
            supplier_id: [SUP-007]
            exception_types: [supplier_delay]
            region: [North]
          owner: {team: team:purchasing, channel: "#supplier-followup", user: carla}
    sla:
      critical: 4
      high: 24
      medium: 72
      low: 168
    escalation:
      steps:
        - after_hours: 0
          channel: "#planning-escalations"
        - after_hours: 8
          notify_role: manager
        - after_hours: 24
          notify_role: director
    autonomy:
      auto_approvable: [replenish, transfer]
      default_limit: 1000
      limits:
        replenish: 5000
      min_confidence: 0.8
      excluded_categories: [Fresh]
    roles:
      planner:
        members: [ana, ben]
        may_approve: [replenish, transfer]
        max_value: 10000
      buyer:
        members: [carla]
        may_approve: [replenish, cancel]
        max_value: 25000
      manager:
        members: [erin]
        may_approve: [replenish, cancel, transfer]
        max_value: 100000
      director:
        members: [farid]
        may_approve: [replenish, cancel, transfer, expedite]
        max_value: null
    thresholds:
      excess_days_of_cover: 90
      severity_bands: {critical: 50000, high: 10000, medium: 1000}
      tier_bump: {strategic: 1, key: 0, standard: 0}
    """
)


@pytest.fixture
def policy() -> Policy:
    return parse_policy(POLICY_YAML, "test-policy.yaml")


def _exception(exception_type="projected_stockout", category=None, region=None, supplier_id=None, customer_tier=None) -> dict:
    return {"exception_type": exception_type, "category": category, "region": region, "supplier_id": supplier_id, "customer_tier": customer_tier}


# Routing


def test_routing_picks_the_most_specific_rule_and_falls_back(policy):
    exceptions = pd.DataFrame(
        [
            _exception(category="Fresh"),  # only `fresh` matches
            _exception(category="Fresh", customer_tier="strategic"),  # fresh (1) loses to strategic-stockouts (2)
            _exception("supplier_delay", category="Fresh", region="North", supplier_id="SUP-007"),  # 3 criteria beat 1 and 1
            _exception("supplier_delay", region="South", supplier_id="SUP-007"),  # sup-7 rule needs North too
            _exception("excess_stock", category="Dry", region="South", customer_tier="strategic"),  # nothing matches
            _exception("stale_feed"),  # all nulls
        ],
        index=[10, 11, 12, 13, 14, 15],
    )
    routed = assign_owners(exceptions, policy)
    assert list(routed["routing_rule"]) == ["fresh", "strategic-stockouts", "sup-7-delays", "fallback", "fallback", "fallback"]
    assert list(routed["owner_team"]) == [
        "team:buying-fresh", "team:key-accounts", "team:purchasing", "team:planning", "team:planning", "team:planning",
    ]
    assert list(routed["owner_channel"])[:3] == ["#buying-fresh", "#key-accounts", "#supplier-followup"]
    assert list(routed["owner_user"]) == [None, "maria", "carla", None, None, None]
    assert list(routed.index) == [10, 11, 12, 13, 14, 15]
    assert "owner_team" not in exceptions  # a copy, the input untouched


def test_routing_tie_goes_to_the_rule_earlier_in_the_file(policy):
    both = pd.DataFrame([_exception("excess_stock", category="Fresh", region="North")])
    # `fresh` (category) and `north` (region) both match on one criterion: the first in the file wins.
    assert assign_owners(both, policy)["routing_rule"].iloc[0] == "fresh"
    data = yaml.safe_load(POLICY_YAML)
    rules = data["owners"]["rules"]
    data["owners"]["rules"] = [rules[1], rules[0], *rules[2:]]
    swapped = parse_policy(yaml.safe_dump(data, sort_keys=False), "swapped.yaml")
    assert assign_owners(both, swapped)["routing_rule"].iloc[0] == "north"


def test_routing_compares_supplier_ids_as_text(policy):
    numeric = parse_policy(POLICY_YAML.replace("supplier_id: [SUP-007]", "supplier_id: [4711]"), "numeric.yaml")
    frame = pd.DataFrame([_exception("supplier_delay", region="North", supplier_id=4711)])
    assert assign_owners(frame, numeric)["routing_rule"].iloc[0] == "sup-7-delays"


def test_routing_names_missing_columns(policy):
    with pytest.raises(ValueError, match="customer_tier"):
        assign_owners(pd.DataFrame([_exception()]).drop(columns="customer_tier"), policy)


# SLA and severity


def test_sla_due_at_adds_the_severity_hours_in_utc(policy):
    first_seen = pd.Series(pd.to_datetime(["2026-03-02 09:30", "2026-03-02 09:30", "2026-03-02 23:00", None]))
    due = sla_due_at(pd.Series(["critical", "high", "low", "medium"]), first_seen, policy)
    assert str(due.dt.tz) == "UTC"
    assert list(due[:3]) == [
        pd.Timestamp("2026-03-02 13:30", tz="UTC"),
        pd.Timestamp("2026-03-03 09:30", tz="UTC"),
        pd.Timestamp("2026-03-09 23:00", tz="UTC"),
    ]
    assert pd.isna(due.iloc[3])
    # An aware first_seen in another zone is the same instant: 10:00 CET is 09:00 UTC, + 72 h medium.
    aware = pd.Series(pd.to_datetime(["2026-03-02 10:00"]).tz_localize("Europe/Berlin"))
    assert sla_due_at(pd.Series(["medium"]), aware, policy).iloc[0] == pd.Timestamp("2026-03-05 09:00", tz="UTC")


def test_sla_rejects_an_unknown_severity(policy):
    with pytest.raises(ValueError, match="urgent"):
        sla_due_at(pd.Series(["urgent"]), pd.Series(pd.to_datetime(["2026-03-02"])), policy)


def test_severity_bands_then_tier_bump(policy):
    money = pd.Series([50_000.0, 49_999.99, 10_000.0, 9_999.0, 1_000.0, 999.0, 999.0, 10_000.0, 60_000.0, np.nan, 0.0])
    tier = pd.Series(["standard", "standard", "key", "key", "standard", "standard", "strategic", "strategic", "strategic", None, "strategic"])
    expected = [
        "critical",  # at the critical floor
        "high",  # a cent below it
        "high",  # at the high floor; key keeps
        "medium",
        "medium",  # at the medium floor
        "low",
        "medium",  # low bumped one level for a strategic customer
        "critical",  # high bumped
        "critical",  # already critical: stays
        "low",  # unknown money counts as none; no tier, no bump
        "medium",  # nothing at risk, but a strategic customer
    ]
    assert list(severity_from(money, tier, policy)) == expected


def test_severity_floor_raises_types_without_money_at_risk(policy):
    money = pd.Series([0.0, 0.0, 0.0, 60_000.0])
    tier = pd.Series([None, None, None, None])
    types = pd.Series(["stale_feed", "data_quality", "excess_stock", "data_quality"])
    assert list(severity_from(money, tier, policy, types)) == ["high", "medium", "low", "critical"]


def test_tier_bump_is_configurable(policy):
    text = POLICY_YAML.replace("tier_bump: {strategic: 1, key: 0, standard: 0}", "tier_bump: {strategic: 2, key: 1, standard: -1}")
    bumped = parse_policy(text, "bumped.yaml")
    result = severity_from(pd.Series([1_000.0, 1_000.0, 1_000.0]), pd.Series(["strategic", "key", "standard"]), bumped)
    assert list(result) == ["critical", "high", "low"]


# Bounded autonomy

GOOD_ACTION = {
    "action_type": "replenish", "value": 4_000.0, "confidence": 0.9, "category": "Dry",
    "data_fresh": True, "forecast_degraded": False, "requested_by": "ana",
}


def _decide(policy: Policy, **changes) -> pd.Series:
    return decide_autonomy(pd.DataFrame([{**GOOD_ACTION, **changes}]), policy).iloc[0]


def test_autonomy_allows_when_every_condition_holds_and_says_why(policy):
    row = _decide(policy)
    assert row["policy_decision"] == AUTO_APPROVED
    assert row["approver_role"] is None
    for reason in ("value 4,000 ≤ limit 5,000 for replenish", "confidence 0.90 ≥ 0.80", "data fresh", "forecast healthy"):
        assert reason in row["policy_reasons"]


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"data_fresh": False}, "stale data"),
        ({"forecast_degraded": True}, "forecast degraded"),
        ({"value": 12_400.0}, "value 12,400 > limit 5,000 for replenish"),
        ({"confidence": 0.79}, "confidence 0.79 < 0.80"),
        ({"category": "Fresh"}, "category Fresh excluded from auto-approval"),
        ({"action_type": "cancel"}, "cancel is never auto-approved"),
        ({"data_fresh": None}, "data freshness unknown"),
        ({"confidence": np.nan}, "confidence unknown"),
    ],
)
def test_autonomy_refuses_and_names_the_reason(policy, changes, reason):
    row = _decide(policy, **changes)
    assert row["policy_decision"] == AWAITING_APPROVAL
    assert reason in row["policy_reasons"]
    assert row["approver_role"] != NO_ROLE


def test_autonomy_lists_every_reason_and_uses_the_default_limit(policy):
    row = _decide(policy, value=12_400.0, forecast_degraded=True, data_fresh=False)
    assert row["policy_reasons"] == "value 12,400 > limit 5,000 for replenish; stale data; forecast degraded"
    # transfer has no limit of its own: default_limit 1,000 applies.
    assert _decide(policy, action_type="transfer", value=1_000.0)["policy_decision"] == AUTO_APPROVED
    assert "value 1,001 > limit 1,000 for transfer" in _decide(policy, action_type="transfer", value=1_001.0)["policy_reasons"]


def test_autonomy_switch_off_stops_everything(policy):
    off = parse_policy(POLICY_YAML.replace("autonomy:\n", "autonomy:\n  enabled: false\n"), "off.yaml")
    row = _decide(off)
    assert row["policy_decision"] == AWAITING_APPROVAL
    assert "auto-approval is switched off" in row["policy_reasons"]


def test_approver_is_the_role_with_the_smallest_covering_band(policy):
    actions = pd.DataFrame(
        [
            {**GOOD_ACTION, "value": 9_000.0},  # planner 10k covers
            {**GOOD_ACTION, "value": 20_000.0},  # buyer 25k
            {**GOOD_ACTION, "value": 90_000.0},  # manager 100k
            {**GOOD_ACTION, "value": 2_000_000.0},  # director, no limit
            {**GOOD_ACTION, "action_type": "cancel", "value": 500.0},  # planners may not cancel: buyer
            {**GOOD_ACTION, "action_type": "transfer", "value": 50_000.0},  # buyers may not transfer: manager
            {**GOOD_ACTION, "action_type": "allocate", "value": 1.0},  # nobody may approve allocate
            {**GOOD_ACTION, "action_type": "cancel", "value": 500.0, "requested_by": "carla"},  # buyer's only member asked
        ]
    )
    decided = decide_autonomy(actions.assign(forecast_degraded=True), policy)
    assert list(decided["approver_role"]) == ["planner", "buyer", "manager", "director", "buyer", "manager", NO_ROLE, "manager"]
    assert "no role may approve allocate of 1" in decided["policy_reasons"].iloc[6]


def test_autonomy_rejects_unknown_action_types(policy):
    with pytest.raises(ValueError, match="reorder"):
        decide_autonomy(pd.DataFrame([{**GOOD_ACTION, "action_type": "reorder"}]), policy)


def test_autonomy_on_an_empty_frame(policy):
    out = decide_autonomy(pd.DataFrame(columns=list(GOOD_ACTION)), policy)
    assert out.empty and {"policy_decision", "approver_role", "policy_reasons"} <= set(out.columns)


# Approval rights


def test_may_approve_refuses_self_approval_wrong_type_and_over_band(policy):
    ok, why = may_approve(policy, "ana", "replenish", 5_000.0, requested_by="ana")
    assert not ok and "own request" in why
    ok, why = may_approve(policy, "ana", "cancel", 100.0, requested_by="ben")
    assert not ok and "may not approve cancel" in why
    ok, why = may_approve(policy, "ana", "replenish", 10_001.0, requested_by="ben")
    assert not ok and "exceeds" in why and "10,000" in why
    ok, why = may_approve(policy, "zoe", "replenish", 1.0, requested_by="ben")
    assert not ok and "no approving role" in why


def test_may_approve_allows_within_band(policy):
    ok, why = may_approve(policy, "ana", "replenish", 10_000.0, requested_by="ben")
    assert ok and "planner" in why
    ok, _ = may_approve(policy, "farid", "expedite", 5_000_000.0, requested_by=None)
    assert ok
    ok, _ = may_approve(policy, "erin", "cancel", 90_000.0, requested_by="carla")
    assert ok


# Escalation


def test_escalation_steps_due_by_hours_overdue(policy):
    assert escalation_steps(policy, -1.0) == []
    assert [s.channel for s in escalation_steps(policy, 0.0)] == ["#planning-escalations"]
    assert [s.notify_role for s in escalation_steps(policy, 8.0)] == [None, "manager"]
    assert [s.notify_role for s in escalation_steps(policy, 100.0)] == [None, "manager", "director"]


# Loading and errors


def test_packaged_default_loads():
    default = load_policy()
    assert default.source.endswith("default_policy.yaml")
    assert default.owners.rules and default.roles
    assert default.thresholds.below_safety_stock_consecutive_buckets == 2
    assert default.thresholds.demand_spike_k_sigma == 3.0
    assert default.thresholds.pipeline_surge_share == 0.5
    assert default.thresholds.excess_days_of_cover == 120
    assert default.thresholds.data_quality_quarantine_share == 0.02
    assert default.thresholds.severity_floor == {"stale_feed": "high", "data_quality": "medium"}
    assert set(default.autonomy.limits) <= set(ACTION_TYPES)


def test_environment_variable_overrides_the_default(tmp_path, monkeypatch):
    path = tmp_path / "partner.yaml"
    path.write_text(POLICY_YAML)
    monkeypatch.setenv(POLICY_ENV, str(path))
    loaded = load_policy()
    assert loaded.source == str(path)
    assert loaded.thresholds.excess_days_of_cover == 90
    monkeypatch.setenv(POLICY_ENV, str(tmp_path / "missing.yaml"))
    with pytest.raises(PolicyError, match=f"missing.yaml.*{POLICY_ENV}.*not found"):
        load_policy()
    monkeypatch.delenv(POLICY_ENV)
    assert load_policy().source.endswith("default_policy.yaml")


def test_explicit_path_beats_the_environment(tmp_path, monkeypatch):
    path = tmp_path / "explicit.yaml"
    path.write_text(POLICY_YAML)
    monkeypatch.setenv(POLICY_ENV, str(tmp_path / "missing.yaml"))
    assert load_policy(path).source == str(path)


def _load_error(tmp_path: Path, text: str) -> str:
    path = tmp_path / "bad_policy.yaml"
    path.write_text(text)
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert isinstance(info.value, ValueError)
    message = str(info.value)
    assert str(path) in message
    return message


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("auto_approvable: [replenish, transfer]", "auto_approvable: [replenish, reorder]", ["autonomy.auto_approvable[1]", "'reorder'"]),
        ("    replenish: 5000", "    reorder: 5000", ["autonomy.limits.reorder (key)", "'reorder'"]),
        ("    replenish: 5000", "    replenish: -5", ["autonomy.limits.replenish", "-5", "greater than or equal to 0"]),
        ("min_confidence: 0.8", "min_confidence: high", ["autonomy.min_confidence", "'high'", "valid number"]),
        ("  critical: 4\n", "  critical: '4'\n", ["sla.critical", "'4'"]),
        ("min_confidence: 0.8", "min_confidence: 0.8\n  min_confidense: 0.8", ["autonomy.min_confidense", "unknown key", "0.8"]),
        ("exception_types: [projected_stockout, order_at_risk]", "exception_types: [stockout]", ["owners.rules[2].match.exception_types[0]", "strategic-stockouts", "'stockout'"]),
        ("channel: \"#buying-fresh\"", "channel: buying-fresh", ["owners.rules[0].owner.channel", "'buying-fresh'"]),
        ("notify_role: manager", "notify_role: vp", ["escalation.steps[1].notify_role", "'vp'"]),
        ("after_hours: 8", "after_hours: 48", ["escalation", "ascending", "48"]),
        ("  high: 24\n", "  high: 2\n", ["sla", "more severe"]),
        ("severity_bands: {critical: 50000", "severity_bands: {critical: 500", ["thresholds.severity_bands", "critical ≥ high"]),
        ("tier_bump: {strategic: 1,", "tier_bump: {vip: 1,", ["thresholds.tier_bump.vip (key)", "'vip'"]),
        ("version: 1", "version: 2", ["version", "2"]),
    ],
)
def test_bad_policy_names_file_field_and_value(tmp_path, old, new, expected):
    assert old in POLICY_YAML
    message = _load_error(tmp_path, POLICY_YAML.replace(old, new, 1))
    for fragment in expected:
        assert fragment in message, (fragment, message)


def test_bad_policy_gives_the_line(tmp_path):
    message = _load_error(tmp_path, POLICY_YAML.replace("    replenish: 5000", "    replenish: -5"))
    line = POLICY_YAML.splitlines().index("    replenish: 5000") + 1
    assert f"autonomy.limits.replenish at line {line}" in message


def test_yaml_syntax_error_names_the_line(tmp_path):
    broken = POLICY_YAML.replace("  high: 24", "  high: [24")
    message = _load_error(tmp_path, broken)
    assert "invalid YAML" in message and "line 29" in message and "started at line 28" in message
    assert broken.splitlines()[27] == "  high: [24"


def test_duplicate_keys_are_refused(tmp_path):
    message = _load_error(tmp_path, POLICY_YAML.replace("    replenish: 5000", "    replenish: 5000\n    replenish: 50000"))
    assert "duplicate key 'replenish'" in message


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(PolicyError, match="nowhere.yaml not found"):
        load_policy(tmp_path / "nowhere.yaml")
    assert "is empty" in _load_error(tmp_path, "# only a comment\n")
    assert "required, missing" in _load_error(tmp_path, "version: 1\n")


def test_currency_defaults_to_eur_and_takes_an_iso_code(tmp_path):
    assert "currency" not in POLICY_YAML and parse_policy(POLICY_YAML, "no-currency.yaml").currency == "EUR"
    assert load_policy().currency == "EUR"  # the packaged default says so explicitly
    assert parse_policy(POLICY_YAML.replace("version: 1\n", "version: 1\ncurrency: CHF\n"), "chf.yaml").currency == "CHF"


@pytest.mark.parametrize("bad", ["eur", "EURO", "EUX", "€", "XAU", "978"])
def test_a_currency_that_is_not_an_iso_code_is_refused_naming_it(tmp_path, bad):
    message = _load_error(tmp_path, POLICY_YAML.replace("version: 1\n", f"version: 1\ncurrency: '{bad}'\n"))
    assert "currency at line 2" in message and repr(bad) in message and "ISO 4217" in message


# Roles by category (RELIABILITY.md §20)

CATEGORY_ROLES = """  fresh_buyer:
    members: [fiona]
    may_approve: [replenish]
    max_value: 15000
    categories: [Dairy & Chilled, Frozen Foods]
  grocery_buyer:
    members: [gus]
    may_approve: [replenish]
    max_value: 15000
    categories: [Beverages]
thresholds:
"""


@pytest.fixture
def scoped_policy() -> Policy:
    assert "\nthresholds:\n" in POLICY_YAML
    return parse_policy(POLICY_YAML.replace("\nthresholds:\n", "\n" + CATEGORY_ROLES, 1), "scoped.yaml")


def test_the_approver_of_an_action_is_the_role_scoped_to_its_category(scoped_policy):
    actions = pd.DataFrame([
        {**GOOD_ACTION, "value": 12_000.0, "category": "Dairy & Chilled"},
        {**GOOD_ACTION, "value": 12_000.0, "category": "Beverages"},
        {**GOOD_ACTION, "value": 12_000.0, "category": "Hardware & Tools"},  # no scoped role: the unscoped buyer
        {**GOOD_ACTION, "value": 12_000.0, "category": None},  # unknown: only a role not limited to categories
        {**GOOD_ACTION, "value": 9_000.0, "category": "Beverages"},  # the planner's smaller band still wins
    ])
    decided = decide_autonomy(actions.assign(forecast_degraded=True), scoped_policy)
    assert list(decided["approver_role"]) == ["fresh_buyer", "grocery_buyer", "buyer", "buyer", "planner"]


def test_may_approve_refuses_a_role_outside_its_categories_naming_them(scoped_policy):
    allowed, reason = may_approve(scoped_policy, "gus", "replenish", 12_000.0, None, "Dairy & Chilled")
    assert not allowed and reason == "gus's roles may not approve replenish in category Dairy & Chilled (they cover grocery_buyer: Beverages)"
    assert may_approve(scoped_policy, "fiona", "replenish", 12_000.0, None, "Dairy & Chilled") == (
        True, "fiona may approve replenish of 12,000 as fresh_buyer (band 15,000)")
    unknown, why = may_approve(scoped_policy, "fiona", "replenish", 12_000.0, None, None)
    assert not unknown and "an action of unknown category" in why


def test_a_role_whose_only_member_is_the_recommending_system_never_approves_its_actions():
    """Actions the planner recommends are requested by planner-engine (no requested_by on the row): a role
    holding only that account (an automation) is never routed what the system itself asked for."""
    automation = parse_policy(POLICY_YAML.replace("\nthresholds:\n", """
  automation:
    members: [planner-engine]
    may_approve: [replenish]
    max_value: 5000
thresholds:
""", 1), "automation.yaml")
    recommended = pd.DataFrame([{k: v for k, v in GOOD_ACTION.items() if k != "requested_by"} | {"forecast_degraded": True}])
    assert decide_autonomy(recommended, automation).iloc[0]["approver_role"] == "planner"
    assert decide_autonomy(recommended.assign(requested_by="ana"), automation).iloc[0]["approver_role"] == "automation"
