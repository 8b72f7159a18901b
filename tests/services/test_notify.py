"""Notify owners against a local HTTP server speaking the Slack Web API (tests/slack_api.py): one parent per
exception, edits through chat.update plus one thread reply, 429s honoured, no second post after a lost
answer, the console + notifications fallback without a token, one digest per channel and day, opaque
button ids. Exceptions and actions are crafted rows on a fresh SQLite warehouse: every expected number is
written here."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pandas as pd
import yaml

from demand_control.infra import clock
from demand_control.schema import tables
from demand_control.ops.notify import notify_owners_job
from demand_control.services.notifier import notify_exceptions
from demand_control.messages.slack import change_reply, exception_message, parse_button
from demand_control.resources.clock import PlanningClock
from demand_control.resources.slack import SlackNotifier
from demand_control.resources.warehouse import Warehouse
from tests.services.conftest import CHANNELS
from tests.slack_api import TOKEN

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
CHAT = ("chat.postMessage", "chat.update")


def exception_row(key: str, severity: str, channel: str, money: float, occurrence: int = 1, **over: object) -> dict:
    sku, location = key.split(":", 1)[1].split("@")
    row = {
        "exception_key": key, "exception_type": key.split(":", 1)[0], "entity": f"{sku}@{location}", "sku": sku, "location_id": location,
        "supplier_id": "SUP-1", "po_id": None, "po_line_no": None, "category": "fresh", "region": "north", "customer_tier": "key",
        "window_start": T0.date(), "units_at_risk": money / 10, "money_at_risk": money, "trigger_values": "{}",
        "sentence": f"{sku} at {location}: stockout week of 30 Nov, short {money / 10:,.0f} ({money:,.0f} margin at risk).",
        "affected_orders": "[]", "affected_order_count": 2, "severity": severity, "owner_team": "team:buying-fresh",
        "owner_channel": channel, "owner_user": None, "routing_rule": "fresh", "state": "open", "occurrence": occurrence,
        "first_seen_at": T0, "last_seen_at": T0, "opened_at": T0, "state_changed_at": T0, "values_changed_at": T0,
        "resolved_at": None, "snoozed_until": None, "sla_due_at": T0 + timedelta(hours=24), "last_change": "opened",
    }
    row.update(over)
    return row


def action_row(exc: dict, action_id: str, decision: str = "awaiting_approval") -> dict:
    return {
        "action_id": action_id, "exception_key": exc["exception_key"], "occurrence": exc["occurrence"], "exception_type": exc["exception_type"],
        "action_type": "replenish", "rank": 1, "sku": exc["sku"], "location_id": exc["location_id"], "category": "fresh",
        "supplier_id": "SUP-1", "quantity": 480.0, "value": 9_600.0, "order_by": T0.date(), "needed_by": T0.date(), "confidence": 0.82,
        "expected_impact": "Order 480 units from SUP-1 by 24 Nov: covers the stockout of 30 Nov.", "data_fresh": True,
        "forecast_degraded": False, "policy_decision": decision, "approver_role": "buyer" if decision == "awaiting_approval" else None,
        "policy_reasons": "value 9,600 above the buyer's autonomy limit 5,000", "owner_team": exc["owner_team"],
        "owner_channel": exc["owner_channel"], "created_at": T0, "updated_at": T0,
    }


def scenario_rows(sku: str, location: str) -> list[dict]:
    base = {"sku": sku, "location_id": location, "supply": 100.0, "demand": 160.0, "lines_total": 6, "computed_at": T0}
    return [
        {**base, "scenario": "tier_priority", "scenario_rank": 1, "recommended": True, "allocated": 100.0, "fill_rate": 0.625, "fill_rate_strategic": 1.0,
         "fill_rate_key": 0.5, "fill_rate_standard": 0.0, "lines_filled": 3, "lines_short": 3, "revenue_at_risk": 1_200.0,
         "weighted_revenue_at_risk": 1_500.0, "customers_affected": 2, "customers_affected_strategic": 0},
        {**base, "scenario": "fair_share", "scenario_rank": 2, "recommended": False, "allocated": 100.0, "fill_rate": 0.625, "fill_rate_strategic": 0.625,
         "fill_rate_key": 0.625, "fill_rate_standard": 0.625, "lines_filled": 0, "lines_short": 6, "revenue_at_risk": 1_200.0,
         "weighted_revenue_at_risk": 2_400.0, "customers_affected": 4, "customers_affected_strategic": 1},
    ]


def write_plan(warehouse: Warehouse, exceptions: list[dict], actions: list[dict] = (), scenarios: list[dict] = (), closed: list[dict] = ()) -> None:
    lifecycle = pd.DataFrame(list(exceptions) + list(closed))
    warehouse.replace_rows("exception_lifecycle", lifecycle)
    warehouse.replace_rows("planning_exceptions", pd.DataFrame(exceptions) if exceptions else lifecycle.iloc[0:0])
    planned = pd.DataFrame(list(actions), columns=[c.name for c in tables.recommended_actions.columns])
    warehouse.replace_rows("recommended_actions", planned.assign(source=planned["source"].fillna("planner")))
    warehouse.replace_rows("allocation_scenarios", pd.DataFrame(list(scenarios), columns=[c.name for c in tables.allocation_scenarios.columns]))


def seed(warehouse: Warehouse) -> dict[str, dict]:
    """Three exceptions that get a message (two channels), one low one for the digest."""
    rows = {
        "crit": exception_row("projected_stockout:SKU-1@DC-1", "critical", CHANNELS[0], 12_000.0),
        "high": exception_row("order_at_risk:SKU-2@DC-1", "high", CHANNELS[0], 4_000.0),
        "med": exception_row("projected_stockout:SKU-3@DC-2", "medium", CHANNELS[1], 900.0),
        "low": exception_row("excess_stock:SKU-4@DC-2", "low", CHANNELS[1], 150.0),
    }
    actions = [action_row(rows["crit"], "A-00000000000000c1"), action_row(rows["high"], "A-00000000000000b2", "auto_approved")]
    write_plan(warehouse, list(rows.values()), actions, scenario_rows("SKU-1", "DC-1"))
    return rows


def notifier(base_url: str, token: str = TOKEN, interval: float = 0.05) -> SlackNotifier:
    return SlackNotifier(bot_token=token, base_url=base_url, post_interval_seconds=interval)


def run(warehouse: Warehouse, base_url: str, keys: list[str] | None = None, token: str = TOKEN, now: datetime | None = None):  # noqa: ANN201
    return notify_exceptions(warehouse, notifier(base_url, token), now or clock.now(), keys=keys, log=lambda _: None)


def slack_rows(warehouse: Warehouse) -> pd.DataFrame:
    return warehouse.read("slack_messages").set_index("exception_key")


def test_one_parent_per_exception_and_an_unchanged_rerun_posts_nothing(warehouse: Warehouse, slack) -> None:  # noqa: ANN001
    fake, base_url = slack
    rows = seed(warehouse)
    summary = run(warehouse, base_url)
    assert (summary.posted, summary.digests, summary.failed) == (3, 1, 0)
    parents = fake.parents()
    assert len([p for p in parents if (p["metadata"] or {}).get("event_type") == "demand_control_exception"]) == 3
    stored = slack_rows(warehouse)
    assert set(stored.index) == {rows[k]["exception_key"] for k in ("crit", "high", "med")}
    assert stored["state"].eq("posted").all() and stored["ts"].notna().all()
    # Routed by the policy's owner channel; the row keeps the channel id chat.update needs.
    by_ts = {p["ts"]: fake.channels[p["channel"]] for p in parents}
    assert by_ts[stored.loc[rows["med"]["exception_key"], "ts"]] == "buying-grocery"
    assert by_ts[stored.loc[rows["crit"]["exception_key"], "ts"]] == "buying-fresh"
    # The critical one first: bursts are queued by severity.
    posts = fake.calls_to("chat.postMessage", "ok")
    assert posts[0].params["metadata"]["event_payload"]["exception_key"] == rows["crit"]["exception_key"]
    crit = next(p for p in parents if p["ts"] == stored.loc[rows["crit"]["exception_key"], "ts"])
    rendered = json.dumps(crit["blocks"])
    for expected in ("12,000", "1,200", "tier_priority", "awaiting approval by buyer", "Critical", "24 Nov 08:00 UTC"):
        assert expected in rendered
    audit = warehouse.read("audit_log")
    assert (audit["event_type"] == "notification").sum() == 4  # three parents and the digest

    before = len(fake.calls)
    again = run(warehouse, base_url)
    assert (again.posted, again.updated, again.replies, again.digests, again.unchanged) == (0, 0, 0, 0, 3)
    assert not [c for c in fake.calls[before:] if c.method in CHAT]
    assert len(fake.messages) == 4


def test_a_change_is_one_chat_update_and_one_thread_reply(warehouse: Warehouse, slack) -> None:  # noqa: ANN001
    fake, base_url = slack
    rows = seed(warehouse)
    run(warehouse, base_url)
    ts = slack_rows(warehouse).loc[rows["crit"]["exception_key"], "ts"]
    changed = {**rows["crit"], "money_at_risk": 18_000.0, "units_at_risk": 1_800.0, "last_change": "updated",
               "sentence": "SKU-1 at DC-1: stockout week of 30 Nov, short 1,800 (18,000 margin at risk)."}
    actions = [action_row(changed, "A-00000000000000c1"), action_row(rows["high"], "A-00000000000000b2", "auto_approved")]
    write_plan(warehouse, [changed, rows["high"], rows["med"], rows["low"]], actions, scenario_rows("SKU-1", "DC-1"))

    before = len(fake.calls)
    summary = run(warehouse, base_url)
    new_calls = fake.calls[before:]
    assert [c.method for c in new_calls if c.method in CHAT] == ["chat.update", "chat.postMessage"]
    assert (summary.updated, summary.replies, summary.posted) == (1, 1, 0)
    assert new_calls[[c.method for c in new_calls].index("chat.update")].params["ts"] == ts
    replies = fake.replies(ts)
    assert len(replies) == 1
    assert "money at risk: EUR 12,000 → EUR 18,000" in replies[0]["text"] and "units at risk: 1,200 → 1,800" in replies[0]["text"]
    parent = next(m for m in fake.messages if m["ts"] == ts)
    assert parent.get("edited") and "18,000" in json.dumps(parent["blocks"])

    before = len(fake.calls)
    run(warehouse, base_url)
    assert not [c for c in fake.calls[before:] if c.method in CHAT]


def test_auto_resolution_updates_the_parent_and_says_so_in_the_thread(warehouse: Warehouse, slack) -> None:  # noqa: ANN001
    fake, base_url = slack
    rows = seed(warehouse)
    run(warehouse, base_url)
    ts = slack_rows(warehouse).loc[rows["crit"]["exception_key"], "ts"]
    resolved = {**rows["crit"], "state": "auto_resolved", "last_change": "auto_resolved", "resolved_at": T0 + timedelta(hours=3)}
    write_plan(warehouse, [rows["high"], rows["med"], rows["low"]], [action_row(rows["high"], "A-00000000000000b2", "auto_approved")], closed=[resolved])

    summary = run(warehouse, base_url, keys=[rows["crit"]["exception_key"]])
    assert (summary.updated, summary.resolved, summary.replies) == (1, 1, 1)
    parent = next(m for m in fake.messages if m["ts"] == ts)
    assert "Resolved" in parent["blocks"][0]["text"]["text"]
    assert not [b for b in parent["blocks"] if b["type"] == "actions"]  # nothing left to decide
    assert "auto-resolved" in fake.replies(ts)[0]["text"]
    before = len(fake.calls)
    run(warehouse, base_url)
    assert not [c for c in fake.calls[before:] if c.method in CHAT]


def test_429_is_retried_after_retry_after_and_posted_once(warehouse: Warehouse, slack) -> None:  # noqa: ANN001
    fake, base_url = slack
    rows = seed(warehouse)
    fake.fail_next("chat.postMessage", "rate_limit", retry_after=1)
    summary = run(warehouse, base_url, keys=[rows["crit"]["exception_key"]])
    limited, ok = fake.calls_to("chat.postMessage", "rate_limited"), fake.calls_to("chat.postMessage", "ok")
    assert len(limited) == 1 and len(ok) == 1 and summary.posted == 1 and summary.failed == 0
    assert ok[0].at - limited[0].at >= 1.0  # waited out Retry-After
    assert len(fake.parents()) == 1


def test_a_lost_answer_is_reconciled_not_posted_twice(warehouse: Warehouse, slack) -> None:  # noqa: ANN001
    fake, base_url = slack
    rows = seed(warehouse)
    fake.fail_next("chat.postMessage", "drop")
    summary = run(warehouse, base_url, keys=[rows["crit"]["exception_key"]])
    assert len(fake.calls_to("chat.postMessage", "dropped")) == 1
    assert len(fake.calls_to("chat.postMessage")) == 1  # no blind transport retry of a post
    assert len(fake.parents()) == 1 and summary.adopted == 1
    row = slack_rows(warehouse).loc[rows["crit"]["exception_key"]]
    assert row["state"] == "posted" and row["ts"] == fake.parents()[0]["ts"]
    run(warehouse, base_url, keys=[rows["crit"]["exception_key"]])
    assert len(fake.messages) == 1


def test_an_intent_left_by_a_crash_adopts_the_posted_message(warehouse: Warehouse, slack) -> None:  # noqa: ANN001
    """The process died after Slack stored the post and before the ts was committed: the next run finds the
    message by its metadata and adopts it; where nothing was posted, it posts once."""
    fake, base_url = slack
    rows = seed(warehouse)
    crit, med = rows["crit"]["exception_key"], rows["med"]["exception_key"]
    msg = exception_message(rows["crit"], action_row(rows["crit"], "A-00000000000000c1"), scenario_rows("SKU-1", "DC-1"))
    now = clock.now()
    fake.handle("chat.postMessage", {"channel": CHANNELS[0], "text": msg.text, "blocks": msg.blocks,
                                     "metadata": {"event_type": "demand_control_exception", "event_payload": {"exception_key": crit, "occurrence": 1}}})
    intent = {"occurrence": 1, "ts": None, "state": "intent", "content_hash": msg.content_hash, "created_at": now, "updated_at": now, "last_error": None}
    warehouse.append_rows("slack_messages", pd.DataFrame([{"exception_key": crit, "channel": CHANNELS[0], **intent},
                                                          {"exception_key": med, "channel": CHANNELS[1], **intent, "content_hash": "0" * 64}]))
    summary = run(warehouse, base_url, keys=[crit, med])
    assert summary.adopted == 1 and summary.posted == 1
    assert len(fake.calls_to("chat.postMessage")) == 1  # only the one that never landed
    assert len(fake.parents(CHANNELS[0])) == 1 and len(fake.parents(CHANNELS[1])) == 1
    stored = slack_rows(warehouse)
    assert stored.loc[crit, "state"] == "posted" and stored.loc[crit, "ts"] == fake.parents(CHANNELS[0])[0]["ts"]
    assert not fake.calls_to("chat.update")  # the adopted message already shows the current content


def test_a_500_on_post_leaves_the_intent_and_the_next_run_posts_once(warehouse: Warehouse, slack) -> None:  # noqa: ANN001
    fake, base_url = slack
    rows = seed(warehouse)
    key = rows["crit"]["exception_key"]
    fake.fail_next("chat.postMessage", "server_error")
    first = run(warehouse, base_url, keys=[key])
    assert first.failed == 1 and not fake.messages
    row = slack_rows(warehouse).loc[key]
    assert row["state"] == "intent" and pd.isna(row["ts"]) and "500" in row["last_error"]
    second = run(warehouse, base_url, keys=[key])
    assert second.posted == 1 and len(fake.parents()) == 1
    assert len(fake.calls_to("conversations.history")) >= 2  # reconciled before each post decision


def test_posts_are_spaced_about_one_per_second_per_channel(warehouse: Warehouse, slack) -> None:  # noqa: ANN001
    fake, base_url = slack
    rows = [exception_row(f"projected_stockout:SKU-{i}@DC-1", "high", CHANNELS[0], 1_000.0 * i) for i in range(1, 4)]
    rows.append(exception_row("projected_stockout:SKU-9@DC-2", "high", CHANNELS[1], 500.0))
    write_plan(warehouse, rows)
    summary = notify_exceptions(warehouse, notifier(base_url, interval=1.0), clock.now(), log=lambda _: None)
    assert summary.posted == 4
    fresh = sorted(m["posted_at"] for m in fake.parents(CHANNELS[0]))
    assert len(fresh) == 3 and all(b - a >= 0.95 for a, b in zip(fresh, fresh[1:]))
    other = fake.parents(CHANNELS[1])[0]["posted_at"]
    assert other - fresh[-1] < 0.9  # another channel does not wait for this one's slot


def test_without_a_token_console_and_notifications_rows_no_http(warehouse: Warehouse, slack, capsys) -> None:  # noqa: ANN001
    fake, base_url = slack
    rows = seed(warehouse)
    summary = run(warehouse, base_url, token="")
    assert summary.mode == "console" and summary.posted == 3 and summary.digests == 1
    assert fake.calls == []
    out = capsys.readouterr().out
    assert "[slack → #buying-fresh] [critical]" in out and rows["crit"]["exception_key"] in out
    notices = warehouse.read("notifications")
    assert set(notices["status"]) == {"console"}
    assert sorted(notices.loc[notices["kind"] != "app_home", "kind"]) == ["digest", "exception", "exception", "exception"]
    # The App Home of the people the critical case waits for (the policy's buyers), printed and kept too.
    assert sorted(notices.loc[notices["kind"] == "app_home", "subject"]) == ["carla.buyer", "dev.buyer"]
    stored = slack_rows(warehouse)
    assert stored["state"].eq("console").all() and stored["ts"].isna().all()

    again = run(warehouse, base_url, token="")
    assert again.posted == 0 and again.unchanged == 3 and capsys.readouterr().out == ""
    assert len(warehouse.read("notifications")) == len(notices)

    changed = {**rows["med"], "money_at_risk": 1_900.0}
    write_plan(warehouse, [rows["crit"], rows["high"], changed, rows["low"]],
               [action_row(rows["crit"], "A-00000000000000c1"), action_row(rows["high"], "A-00000000000000b2", "auto_approved")], scenario_rows("SKU-1", "DC-1"))
    third = run(warehouse, base_url, token="")
    assert (third.updated, third.replies) == (1, 1)
    assert "money at risk: EUR 900 → EUR 1,900" in capsys.readouterr().out
    assert fake.calls == []


def test_low_severity_goes_to_one_digest_per_channel_and_day(warehouse: Warehouse, slack) -> None:  # noqa: ANN001
    fake, base_url = slack
    lows = [exception_row(f"excess_stock:SKU-{i}@DC-1", "low", CHANNELS[i % 2], 100.0 * i) for i in range(1, 6)]
    write_plan(warehouse, lows)
    now = clock.now()
    summary = run(warehouse, base_url, now=now)
    assert summary.digests == 2 and summary.posted == 0
    digests = fake.parents()
    assert len(digests) == 2 and {fake.channels[d["channel"]] for d in digests} == {"buying-fresh", "buying-grocery"}
    fresh = next(d for d in digests if fake.channels[d["channel"]] == "buying-fresh")
    assert all(f"SKU-{i}@DC-1" in fresh["text"] for i in (2, 4)) and "SKU-1@" not in fresh["text"]
    assert run(warehouse, base_url, now=now + timedelta(minutes=5)).digests == 0  # same day: not re-sent
    assert run(warehouse, base_url, keys=[lows[0]["exception_key"]], now=now + timedelta(days=1)).digests == 0  # scoped runs never digest
    assert run(warehouse, base_url, now=now + timedelta(days=1)).digests == 2
    assert len(fake.messages) == 4


def test_buttons_carry_only_opaque_ids(warehouse: Warehouse, slack) -> None:  # noqa: ANN001
    fake, base_url = slack
    rows = seed(warehouse)
    run(warehouse, base_url)
    buttons = [e for m in fake.messages for b in (m["blocks"] or []) if b["type"] == "actions" for e in b["elements"]]
    assert len(buttons) == 3  # only the action awaiting approval has buttons; the auto-approved one has none
    for button in buttons:
        decision, action_id = parse_button(button["action_id"])
        assert decision in ("approve", "reject", "snooze") and action_id == "A-00000000000000c1" == button["value"]
        assert re.fullmatch(r"(approve|reject|snooze):A-[0-9a-f]{16}", button["action_id"])
        for leaked in ("SKU-1", "480", "replenish", "DC-1", rows["crit"]["exception_key"]):
            assert leaked not in button["action_id"] + button["value"]


def test_approval_results_are_answered_in_the_thread(warehouse: Warehouse, slack) -> None:  # noqa: ANN001
    fake, base_url = slack
    rows = seed(warehouse)
    run(warehouse, base_url)
    row = slack_rows(warehouse).loc[rows["crit"]["exception_key"]]
    payload = {"channel": row["channel"], "thread_ts": row["ts"], "click_id": 1, "action_id": "A-00000000000000c1"}
    warehouse.append_rows("notifications", pd.DataFrame([{
        "notification_id": "approval-result:1", "kind": "approval_result", "channel": row["channel"], "subject": "A-00000000000000c1",
        "text": "Approved by <@U1> as buyer", "payload": json.dumps(payload), "status": "pending", "created_at": clock.now() - timedelta(seconds=5)}]))
    summary = run(warehouse, base_url)
    assert summary.other_notices == 1
    assert [m["text"] for m in fake.replies(row["ts"])] == ["Approved by <@U1> as buyer"]
    assert warehouse.read("notifications").set_index("notification_id").loc["approval-result:1", "status"] == "sent"


def test_change_reply_and_scenarios_in_the_message() -> None:
    assert change_reply({"money at risk": "900", "owner": "a"}, {"money at risk": "1,900", "owner": "a"}) == "What changed:\n• money at risk: 900 → 1,900"
    exc = exception_row("projected_stockout:SKU-1@DC-1", "critical", CHANNELS[0], 12_000.0)
    base = scenario_rows("SKU-1", "DC-1")[1]
    five = [{**base, "scenario": f"scenario_{i}", "scenario_rank": i} for i in range(5, 0, -1)]
    table = json.dumps(exception_message(exc, None, five).blocks)
    assert all(f"scenario_{i}" in table for i in range(1, 5)) and "scenario_5" not in table  # the best four, by rank
    assert exception_message(exc).content_hash == exception_message(dict(exc)).content_hash


def test_the_notify_owners_job_runs_in_process(warehouse: Warehouse) -> None:
    seed(warehouse)
    result = notify_owners_job.execute_in_process(resources={"warehouse": warehouse, "slack_notifier": SlackNotifier(), "clock": PlanningClock()})
    assert result.success
    out = result.output_for_node("notify_exception_owners")
    assert out["mode"] == "console" and out["posted"] == 3
    assert isinstance(notify_owners_job, dg.JobDefinition)


def test_token_check_and_the_app_manifest(slack) -> None:  # noqa: ANN001
    _, base_url = slack
    assert notifier(base_url).whoami()["user_id"] == "U0BOT0001"
    manifest = yaml.safe_load((Path(__file__).parents[2] / "slack" / "manifest.yaml").read_text())
    assert {"chat:write", "chat:write.public", "channels:history", "groups:history"} <= set(manifest["oauth_config"]["scopes"]["bot"])
    assert manifest["settings"]["interactivity"] == {"is_enabled": True, "request_url": "https://YOUR-GATEWAY/slack/interactions"}
    assert manifest["settings"]["socket_mode_enabled"] is False
