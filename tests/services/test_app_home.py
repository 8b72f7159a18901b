"""The Slack App Home tab (views.publish against tests/slack_api.py) and the daily digest show the worklist in
the order `demand-control worklist` prints it: one order on every surface. Each home item has the buttons of
its parent message; a home is published again only when what it shows changed; without a token it is
printed and kept in `notifications`."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pandas as pd
import yaml
from typer.testing import CliRunner

from demand_control.cli.main import app
from demand_control.infra import clock
from demand_control.messages.slack import MAX_HOME_ITEMS, exception_message
from demand_control.resources.slack import SlackNotifier
from demand_control.resources.warehouse import Warehouse
from demand_control.services.app_home import HOME_KIND, home_notification_id
from demand_control.services.notifier import notify_exceptions
from tests.slack_api import TOKEN
from tests.services.test_notify import T0, write_plan
from tests.worklist_cases import (
    BUYER,
    BUYER_ORDER,
    FRESH,
    FRESH_LEAD,
    FRESH_ORDER,
    GROCERY_LEAD,
    action,
    case,
    policy,
    seed_cases,
    write_policy,
)

CASE_LINE = re.compile(r"^\s*\d+\. \w+\s+(\S+)", re.MULTILINE)


def notify(warehouse: Warehouse, base_url: str, token: str = TOKEN, keys: list[str] | None = None, log: list[str] | None = None):  # noqa: ANN201
    notifier = SlackNotifier(bot_token=token, base_url=base_url, post_interval_seconds=0.0)
    return notify_exceptions(warehouse, notifier, clock.now(), keys=keys, log=(log.append if log is not None else lambda _: None), policy=policy())


def home_keys(view: dict) -> list[str]:
    return [b["block_id"].removeprefix("case:") for b in view["blocks"] if b.get("block_id", "").startswith("case:")]


def cli_keys(warehouse: Warehouse, tmp_path, *args: str) -> list[str]:  # noqa: ANN001
    env = {"DEMAND_CONTROL_HOME": str(warehouse.state_home), "DEMAND_CONTROL_POLICY": str(write_policy(tmp_path)), "DEMAND_CONTROL_DATABASE_URL": ""}
    result = CliRunner().invoke(app, ["worklist", *args], env=env)
    assert result.exit_code == 0, result.output
    return CASE_LINE.findall(result.stdout)


def digest(warehouse: Warehouse, channel_id: str | None = None) -> tuple[list[str], str]:
    """The stored digest of a channel: its exception keys and its text."""
    notices = warehouse.read("notifications")
    row = notices[(notices["kind"] == "digest") & notices["notification_id"].str.contains(channel_id or "")].iloc[0]
    return json.loads(row["payload"])["exception_keys"], row["text"]


def test_app_home_cli_and_digest_show_one_order(warehouse: Warehouse, slack, tmp_path) -> None:  # noqa: ANN001
    """The fresh team's cases are all low: the digest lists the whole team worklist, so all three list the
    same keys."""
    fake, base_url = slack
    seed_cases(warehouse, severity="low")
    log: list[str] = []
    summary = notify(warehouse, base_url, log=log)
    assert summary.failed == 0 and summary.homes == 2  # the fresh lead and the buyer; grocery.lead is a name

    on_home = home_keys(fake.homes[FRESH_LEAD])
    on_cli = cli_keys(warehouse, tmp_path, "--owner", "team:buying-fresh")
    digest_keys, digest_text = digest(warehouse, "buying-fresh")
    assert on_home == on_cli == digest_keys == FRESH_ORDER
    assert [k for k in re.findall(r"`([^`]+)`", digest_text)] == FRESH_ORDER  # the text lists them in that order too
    # The buyer sees the cases awaiting a buyer, of every team, in the same one order.
    assert home_keys(fake.homes[BUYER]) == BUYER_ORDER
    assert BUYER_ORDER == [k for k in cli_keys(warehouse, tmp_path) if k in BUYER_ORDER]
    assert GROCERY_LEAD not in fake.homes and any("grocery.lead" in line and "not Slack user ids" in line for line in log)


def test_with_parents_the_digest_keeps_the_worklist_order_of_its_cases(warehouse: Warehouse, slack, tmp_path) -> None:  # noqa: ANN001
    fake, base_url = slack
    rows = seed_cases(warehouse, severity="low")
    # The excess case becomes medium: it gets its own message and leaves the digest; the order stays.
    write_plan(warehouse, [{**r, "severity": "medium"} if k == "excess" else r for k, r in rows.items()],
               warehouse.read("recommended_actions").to_dict("records"))
    notify(warehouse, base_url)
    on_cli = cli_keys(warehouse, tmp_path, "--owner", "team:buying-fresh")
    assert home_keys(fake.homes[FRESH_LEAD]) == on_cli == FRESH_ORDER
    assert digest(warehouse, "buying-fresh")[0] == [k for k in on_cli if k != "excess_stock:SKU-12@DC-1"]
    parents = [p for p in fake.parents(FRESH) if (p["metadata"] or {}).get("event_type") == "demand_control_exception"]
    assert [p["metadata"]["event_payload"]["exception_key"] for p in parents] == ["excess_stock:SKU-12@DC-1"]


def test_each_item_has_the_parent_messages_buttons_and_reads_like_the_worklist(warehouse: Warehouse, slack) -> None:  # noqa: ANN001
    fake, base_url = slack
    rows = seed_cases(warehouse)
    notify(warehouse, base_url)
    view = fake.homes[FRESH_LEAD]
    assert view["type"] == "home" and len(view["blocks"]) <= 100
    buttons = {b["block_id"]: b["elements"] for b in view["blocks"] if b["type"] == "actions"}
    stockout_action = action(rows["stockout"], "A-0000000000000011")
    parent = exception_message(rows["stockout"], stockout_action)
    parent_buttons = next(b["elements"] for b in parent.blocks if b["type"] == "actions")
    assert buttons["decision:A-0000000000000011"] == parent_buttons
    # One button row per case that has an action awaiting a person; none for the case nothing automatic can act on.
    assert sorted(buttons) == ["decision:A-0000000000000011", "decision:A-0000000000000012", "decision:A-0000000000000013"]
    text = json.dumps(view)
    assert "<@U0FRESH01>" in text and "4 cases need you" in text and "plan of Mon 23 Nov" in text
    first = next(b for b in view["blocks"] if b.get("block_id") == "case:projected_stockout:SKU-11@DC-1")["text"]["text"]
    assert first.startswith("*1. ") and "`new`" in first
    assert "Northwind Foods (CUST-0028)" in first and "Acme Dairy (SUP-1)" in first and "approver: buyer" in first
    assert "CHF 2,000 lost margin (tier-weighted)" in first and "*Act by:* Mon 7 Dec" in first
    excess = next(b for b in view["blocks"] if b.get("block_id") == "case:excess_stock:SKU-12@DC-1")["text"]["text"]
    assert "CHF 300 holding cost" in excess and "`changed`" in excess


def test_a_home_is_published_again_only_when_it_changes(warehouse: Warehouse, slack) -> None:  # noqa: ANN001
    fake, base_url = slack
    rows = seed_cases(warehouse)
    notify(warehouse, base_url)
    assert len(fake.calls_to("views.publish", "ok")) == 2
    again = notify(warehouse, base_url)
    assert again.homes == 0 and len(fake.calls_to("views.publish")) == 2
    # A replan raises the safety-stock case above the stockout: the fresh lead's home is republished, the buyer's not.
    raised = {**rows["safety"], "priority": 1_500.0}
    write_plan(warehouse, [raised if k == "safety" else r for k, r in rows.items()], warehouse.read("recommended_actions").to_dict("records"))
    scoped = notify(warehouse, base_url, keys=[raised["exception_key"]])
    assert scoped.homes == 1 and [c.params["user_id"] for c in fake.calls_to("views.publish")][2:] == [FRESH_LEAD]
    assert home_keys(fake.homes[FRESH_LEAD]) == [raised["exception_key"], *FRESH_ORDER[:3]]
    audit = warehouse.read("audit_log")
    assert (audit["subject"] == home_notification_id(FRESH_LEAD)).sum() == 2


def test_a_5xx_on_views_publish_is_retried_and_a_refusal_recorded(warehouse: Warehouse, slack) -> None:  # noqa: ANN001
    fake, base_url = slack
    seed_cases(warehouse)
    fake.fail_next("views.publish", "server_error")
    summary = notify(warehouse, base_url)
    assert summary.failed == 0 and summary.homes == 2 and len(fake.calls_to("views.publish", "server_error")) == 1
    # A user Slack refuses (left the workspace): that home is recorded failed, the others go out.
    fake.refuse_users.add(FRESH_LEAD)
    write_plan(warehouse, [case("projected_stockout:SKU-31@DC-1", "low", 10.0), case("projected_stockout:SKU-32@DC-1", "low", 20.0)],
               [action(case("projected_stockout:SKU-32@DC-1", "low", 20.0), "A-0000000000000032")])
    result = notify(warehouse, base_url)
    assert result.failed == 1 and result.errors == [f"App Home of {FRESH_LEAD}: Slack API HTTP 200: user_not_found"]
    stored = warehouse.read("notifications").set_index("notification_id")
    assert stored.loc[home_notification_id(FRESH_LEAD), "status"] == "failed" and result.homes == 1  # the buyer's
    fake.refuse_users.clear()
    assert notify(warehouse, base_url).homes == 1  # tried again at the next run
    assert home_keys(fake.homes[FRESH_LEAD]) == ["projected_stockout:SKU-32@DC-1", "projected_stockout:SKU-31@DC-1"]


def test_truncated_to_what_a_view_holds(warehouse: Warehouse, slack) -> None:  # noqa: ANN001
    fake, base_url = slack
    many = [case(f"projected_stockout:SKU-{100 + i}@DC-1", "low", 1_000.0 - i) for i in range(30)]
    write_plan(warehouse, many, [action(c, f"A-{i:016x}") for i, c in enumerate(many)])
    summary = notify(warehouse, base_url)
    assert summary.failed == 0
    view = fake.homes[FRESH_LEAD]
    assert len(view["blocks"]) <= 100
    assert home_keys(view) == [c["exception_key"] for c in many[:MAX_HOME_ITEMS]]
    assert "…and 10 more: `demand-control worklist --owner team:buying-fresh`" in json.dumps(view, ensure_ascii=False)
    assert "30 cases need you" in json.dumps(view)


def test_without_a_token_the_home_is_printed_and_kept(warehouse: Warehouse, slack, capsys) -> None:  # noqa: ANN001
    fake, base_url = slack
    seed_cases(warehouse)
    notify(warehouse, base_url, token="")
    assert fake.calls == []
    homes = warehouse.read("notifications")
    homes = homes[homes["kind"] == HOME_KIND].set_index("subject")
    # Console mode needs no Slack ids: the grocery lead and the planner, names, get their homes printed too.
    assert sorted(homes.index) == sorted([BUYER, FRESH_LEAD, GROCERY_LEAD, "ana.planner"]) and set(homes["status"]) == {"console"}
    assert json.loads(homes.loc[FRESH_LEAD, "payload"])["exception_keys"] == FRESH_ORDER
    out = capsys.readouterr().out
    assert f"[slack → App Home {FRESH_LEAD}] App Home of {FRESH_LEAD}: 4 cases need you" in out
    printed = out[out.index(f"[slack → App Home {FRESH_LEAD}]"):].split("\n[slack → ")[0]
    assert re.findall(r"^\s*\d+\. \[\w+\] (\S+?)(?: \(\w+\))?: ", printed, re.MULTILINE) == FRESH_ORDER
    assert "projected_stockout:SKU-11@DC-1 (new)" in printed and "excess_stock:SKU-12@DC-1 (changed)" in printed
    notify(warehouse, base_url, token="")
    assert "App Home" not in capsys.readouterr().out  # unchanged: not printed again
    # A token arrives: the homes that were only printed are published to Slack (where the user is an id).
    notify(warehouse, base_url)
    assert sorted(fake.homes) == sorted([BUYER, FRESH_LEAD])


def test_a_person_with_nothing_to_do_gets_no_home_until_they_had_one(warehouse: Warehouse, slack) -> None:  # noqa: ANN001
    fake, base_url = slack
    rows = seed_cases(warehouse)
    notify(warehouse, base_url)
    assert set(fake.homes) == {FRESH_LEAD, BUYER}
    # Every fresh case is decided: the fresh lead's home is cleared, not left showing stale work.
    decided = pd.DataFrame([{"action_id": a, "decision": "approved", "decided_by": BUYER, "role": "buyer", "decided_at": T0 + timedelta(hours=1)}
                            for a in ("A-0000000000000011", "A-0000000000000012", "A-0000000000000013")])
    warehouse.append_rows("action_decisions", decided)
    write_plan(warehouse, [r for k, r in rows.items() if k != "safety"], warehouse.read("recommended_actions").to_dict("records"))
    notify(warehouse, base_url)
    assert home_keys(fake.homes[FRESH_LEAD]) == [] and "Nothing needs you right now" in json.dumps(fake.homes[FRESH_LEAD])


def test_the_app_manifest_enables_the_home_tab() -> None:
    manifest = yaml.safe_load((Path(__file__).parents[2] / "slack" / "manifest.yaml").read_text())
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True
    assert "chat:write" in manifest["oauth_config"]["scopes"]["bot"]
