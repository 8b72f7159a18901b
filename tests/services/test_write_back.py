"""The ERP write-back against a real trytond on loopback: each approved action becomes exactly one ERP record
(replays, lost answers and dead runs included), retries are bounded, business errors dead-letter at once with
an alert and an audit row, an ERP that is down opens the circuit and keeps the queue intact until it is back,
and the outbox sensor asks for runs with keys that change exactly when the work does."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from subprocess import Popen

import dagster as dg
import pytest
from sqlalchemy import insert, select, text, update

from demand_control.infra import clock
from demand_control.schema import tables
from demand_control.sample.tryton import TrytonSite, restore_or_init, serve, stop
from demand_control.ops.write_back import write_back_job
from demand_control.services.outbox import (
    DEAD_LETTER_KIND,
    RESULT_KIND,
    WriteBackSettings,
    claim_rows,
    drain_outbox,
    due_candidates,
    take_rows,
)
from demand_control.infra.circuit import CircuitBreaker, CircuitState
from demand_control.resources.clock import PlanningClock
from demand_control.resources.erp.base import ReplenishOrder
from demand_control.resources.erp.write import TrytonErp
from demand_control.resources.warehouse import Warehouse
from demand_control.sensors import outbox as outbox_module
from demand_control.sensors.outbox import RUN_KEY_TAG, outbox_sensor
from tests.conftest import NOW
from tests.lossy_proxy import LossyProxy
from tests.tryton_fixtures import TRYTON_AS_OF, TRYTON_LANDSCAPE, TrytonRpc, TrytonServer, free_port, tryton_frames

# Quick retries so a test waits milliseconds, not minutes; the shape (exponential, jittered) is the same.
FAST = WriteBackSettings(backoff_seconds=0.01, backoff_max_seconds=0.1, backoff_jitter_seconds=0.01,
                         breaker_failures=3, breaker_cooldown_seconds=0.5, fallback_channel="#ops-test")


@dataclass
class RestartableTryton:
    server: TrytonServer
    procs: list[Popen] = field(default_factory=list)

    def down(self) -> None:
        stop(self.procs.pop())

    def up(self) -> None:
        self.procs.append(serve(self.server.site))


@pytest.fixture(autouse=True)
def running_clock() -> Iterator[None]:
    """Backoff, leases and the breaker's cool-down are waited out in real time here: the planning clock runs."""
    with clock.use(NOW, running=True):
        yield


@pytest.fixture(scope="module")
def tryton(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RestartableTryton]:
    """A private copy of the seeded database that these tests write to, and may stop and start."""
    frames = tryton_frames()
    site = TrytonSite(
        home=tmp_path_factory.mktemp("tryton_wb"), database="demand_control_wb", login="admin", password="admin",
        port=free_port(), database_uri=None, template_folder=request.config.cache.mkdir("tryton"),
    )
    key = "-".join(f"{k}{v}" for k, v in TRYTON_LANDSCAPE.items()) + f"-{TRYTON_AS_OF.isoformat()}"
    restore_or_init(site, frames, cache_key=key)
    handle = RestartableTryton(TrytonServer(url=site.url, database=site.database, login=site.login,
                                            password=site.password, frames=frames, site=site))
    handle.up()
    try:
        yield handle
    finally:
        while handle.procs:
            handle.down()


@pytest.fixture
def warehouse(tmp_path) -> Warehouse:
    wh = Warehouse(home=str(tmp_path))
    wh.migrate()
    return wh


def erp_for(server: TrytonServer, url: str | None = None, **kwargs) -> TrytonErp:
    # One in-call attempt by default: these tests are about the outbox's own retries.
    kwargs.setdefault("max_attempts", 1)
    kwargs.setdefault("timeout_seconds", 10)
    return TrytonErp(url=url or server.url, database=server.database, login=server.login, password=server.password, **kwargs)


def replenishment(server: TrytonServer, action_id: str, lane: int = 0, sku: str | None = None) -> ReplenishOrder:
    sourcing = server.frames["sourcing"].iloc[lane]
    return ReplenishOrder(action_id=action_id, sku=sku or sourcing["sku"], location_id=sourcing["location_id"],
                          quantity=10 + lane, supplier_id=sourcing["supplier_id"], needed_by=TRYTON_AS_OF + timedelta(days=21))


def enqueue(warehouse: Warehouse, action: ReplenishOrder, *, owner_channel: str | None = None, thread_ts: str | None = None,
            **row) -> None:
    now = clock.now()
    values = {"action_id": action.action_id, "kind": action.kind, "payload": action.model_dump_json(), "status": "pending",
              "attempts": 0, "created_at": now, "updated_at": now, **row}
    with warehouse.engine.begin() as conn:
        conn.execute(insert(tables.erp_outbox).values(**values))
        if owner_channel:
            conn.execute(insert(tables.recommended_actions).values(
                action_id=action.action_id, exception_key=f"stockout:{action.sku}@{action.location_id}", occurrence=1,
                exception_type="stockout", action_type="replenish", rank=1, sku=action.sku, location_id=action.location_id,
                quantity=action.quantity, value=100.0, confidence=0.9, expected_impact="covers the shortage",
                data_fresh=True, forecast_degraded=False, policy_decision="awaiting_approval", policy_reasons="value above limit",
                owner_team="team:buyers", owner_channel=owner_channel, created_at=now, updated_at=now,
            ))
        if thread_ts:
            conn.execute(insert(tables.slack_messages).values(
                exception_key=f"stockout:{action.sku}@{action.location_id}", occurrence=1, channel="C-BUYERS", ts=thread_ts,
                state="posted", content_hash="x", created_at=now, updated_at=now,
            ))


def outbox_row(warehouse: Warehouse, action_id: str):
    with warehouse.engine.connect() as conn:
        return conn.execute(select(tables.erp_outbox).where(tables.erp_outbox.c.action_id == action_id)).one()


def audit_rows(warehouse: Warehouse, action_id: str) -> list:
    with warehouse.engine.connect() as conn:
        return conn.execute(
            select(tables.audit_log).where(tables.audit_log.c.subject == action_id).order_by(tables.audit_log.c.audit_id)
        ).all()


def notices(warehouse: Warehouse, action_id: str) -> list:
    with warehouse.engine.connect() as conn:
        return conn.execute(select(tables.notifications).where(tables.notifications.c.subject == action_id)).all()


def purchases_of(server: TrytonServer, action: ReplenishOrder) -> list[dict]:
    rpc = TrytonRpc(server)
    try:
        return rpc.search_read("purchase.purchase", [("description", "like", f"{action.marker} %")], ["id", "state"])
    finally:
        rpc.close()


def later(seconds: float = 3600) -> datetime:
    return clock.now() + timedelta(seconds=seconds)


def test_the_write_back_job_writes_an_approved_replenishment_once_and_marks_it_done(tryton, warehouse) -> None:
    action = replenishment(tryton.server, "wb-job-000001", lane=0)
    enqueue(warehouse, action)
    result = write_back_job.execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), resources={"warehouse": warehouse, "erp": erp_for(tryton.server), "clock": PlanningClock()},
    )
    assert result.success
    found = purchases_of(tryton.server, action)
    assert len(found) == 1 and found[0]["state"] == "draft"
    row = outbox_row(warehouse, action.action_id)
    assert (row.status, row.attempts, row.erp_model, row.erp_record_ids, row.reconciled) == (
        "done", 1, "purchase.purchase", str(found[0]["id"]), True)
    writes = [r for r in audit_rows(warehouse, action.action_id) if r.event_type == "erp_write"]
    assert len(writes) == 1
    assert json.loads(writes[0].payload)["record_ids"] == [found[0]["id"]]
    assert json.loads(writes[0].payload)["created"] is True


def test_replaying_a_done_row_creates_no_second_purchase(tryton, warehouse) -> None:
    action = replenishment(tryton.server, "wb-replay-00001", lane=1)
    enqueue(warehouse, action, owner_channel="#buyers-north", thread_ts="1700000000.000100")
    erp = erp_for(tryton.server)
    first = drain_outbox(warehouse, erp, settings=FAST, breaker=CircuitBreaker())
    assert (first.written, first.created) == (1, 1)
    with warehouse.engine.begin() as conn:  # an operator (or a bug) puts the row back in the queue
        conn.execute(update(tables.erp_outbox).where(tables.erp_outbox.c.action_id == action.action_id)
                     .values(status="pending", attempts=0, erp_record_ids=None))
    again = drain_outbox(warehouse, erp, settings=FAST, breaker=CircuitBreaker())
    assert (again.written, again.created) == (1, 0)
    found = purchases_of(tryton.server, action)
    assert len(found) == 1
    assert outbox_row(warehouse, action.action_id).erp_record_ids == str(found[0]["id"])
    writes = [json.loads(r.payload) for r in audit_rows(warehouse, action.action_id) if r.event_type == "erp_write"]
    assert [w["created"] for w in writes] == [True, False]
    # The exception's Slack thread hears the ERP result once, not again on the replay.
    [notice] = notices(warehouse, action.action_id)
    assert (notice.kind, notice.channel, notice.status) == (RESULT_KIND, "C-BUYERS", "pending")
    assert json.loads(notice.payload)["thread_ts"] == "1700000000.000100"
    assert f"purchase.purchase {found[0]['id']}" in notice.text


def test_an_answer_dropped_after_commit_is_retried_into_exactly_one_purchase(tryton, warehouse) -> None:
    action = replenishment(tryton.server, "wb-lost-answer-01", lane=2)
    enqueue(warehouse, action)
    with LossyProxy(tryton.server.url) as proxy:
        proxy.drop_next(1, when=lambda body: b"purchase.purchase.create" in body)
        erp = erp_for(tryton.server, url=proxy.url)
        breaker = CircuitBreaker(failure_threshold=3)
        first = drain_outbox(warehouse, erp, settings=FAST, breaker=breaker)
        assert len(proxy.dropped) == 1, "the create reached Tryton and its answer was lost"
        assert first.retry_scheduled == 1 and first.written == 0
        row = outbox_row(warehouse, action.action_id)
        assert (row.status, row.attempts) == ("failed", 1)
        assert "purchase.purchase.create" in row.last_error
        assert len(purchases_of(tryton.server, action)) == 1, "Tryton committed before the answer was lost"
        second = drain_outbox(warehouse, erp, now=later(), settings=FAST, breaker=breaker)
    assert (second.written, second.created) == (1, 0), "the retry found the committed purchase instead of creating one"
    found = purchases_of(tryton.server, action)
    assert len(found) == 1
    row = outbox_row(warehouse, action.action_id)
    assert (row.status, row.attempts, row.erp_record_ids) == ("done", 2, str(found[0]["id"]))


def test_a_business_error_dead_letters_at_once_with_the_erps_message_an_alert_and_an_audit_row(tryton, warehouse) -> None:
    action = replenishment(tryton.server, "wb-unknown-sku-1", lane=0, sku="SKU-NOPE")
    enqueue(warehouse, action, owner_channel="#buyers-east")
    breaker = CircuitBreaker(failure_threshold=1)
    summary = drain_outbox(warehouse, erp_for(tryton.server), settings=FAST, breaker=breaker)
    assert (summary.dead_lettered, summary.retry_scheduled, summary.written) == (1, 0, 0)
    row = outbox_row(warehouse, action.action_id)
    assert (row.status, row.attempts) == ("dead_letter", 1)
    assert "SKU-NOPE" in row.last_error and "not found" in row.last_error
    [notice] = notices(warehouse, action.action_id)
    assert (notice.kind, notice.channel, notice.status) == (DEAD_LETTER_KIND, "#buyers-east", "pending")
    assert "SKU-NOPE" in notice.text
    dead = [r for r in audit_rows(warehouse, action.action_id) if r.event_type == "erp_dead_letter"]
    assert len(dead) == 1 and "SKU-NOPE" in json.loads(dead[0].payload)["error"]
    assert breaker.state is CircuitState.CLOSED, "a refusal proves the ERP is up"
    # Never retried: a later drain finds nothing to do, and the alert is not repeated.
    assert drain_outbox(warehouse, erp_for(tryton.server), now=later(), settings=FAST, breaker=breaker).claimed == 0
    assert outbox_row(warehouse, action.action_id).attempts == 1
    assert len(notices(warehouse, action.action_id)) == 1


def test_a_row_naming_another_action_id_is_dead_lettered_without_calling_the_erp(tryton, warehouse) -> None:
    action = replenishment(tryton.server, "wb-mismatch-0001", lane=0)
    other = replenishment(tryton.server, "wb-mismatch-0002", lane=0)
    enqueue(warehouse, action, payload=other.model_dump_json())
    summary = drain_outbox(warehouse, erp_for(tryton.server), settings=FAST, breaker=CircuitBreaker())
    assert summary.dead_lettered == 1
    assert "idempotency key" in outbox_row(warehouse, action.action_id).last_error
    assert purchases_of(tryton.server, other) == []


def test_transport_failures_are_retried_with_backoff_then_dead_lettered_after_max_attempts(tryton, warehouse) -> None:
    action = replenishment(tryton.server, "wb-bounded-00001", lane=3)
    enqueue(warehouse, action, owner_channel="#buyers-west")
    dead = erp_for(tryton.server, url=f"http://127.0.0.1:{free_port()}")
    settings = WriteBackSettings(max_attempts=3, backoff_seconds=60, backoff_jitter_seconds=30, breaker_failures=100)
    breaker = CircuitBreaker(failure_threshold=100)
    first = drain_outbox(warehouse, dead, settings=settings, breaker=breaker)
    row = outbox_row(warehouse, action.action_id)
    assert (first.retry_scheduled, row.status, row.attempts) == (1, "failed", 1)
    delay = (row.next_attempt_at.replace(tzinfo=UTC) - row.updated_at.replace(tzinfo=UTC)).total_seconds()
    assert 60 <= delay <= 90, f"first retry after the backoff (60 s + jitter), not {delay:.1f} s"
    assert drain_outbox(warehouse, dead, settings=settings, breaker=breaker).claimed == 0, "not due before its backoff"
    drain_outbox(warehouse, dead, now=later(), settings=settings, breaker=breaker)
    row = outbox_row(warehouse, action.action_id)
    delay = (row.next_attempt_at.replace(tzinfo=UTC) - row.updated_at.replace(tzinfo=UTC)).total_seconds()
    assert row.attempts == 2 and 120 <= delay <= 150, "the backoff doubles"
    last = drain_outbox(warehouse, dead, now=later(7200), settings=settings, breaker=breaker)
    row = outbox_row(warehouse, action.action_id)
    assert (last.dead_lettered, row.status, row.attempts) == (1, "dead_letter", 3)
    assert "gave up after 3 attempts" in row.last_error
    [notice] = notices(warehouse, action.action_id)
    assert (notice.kind, notice.channel) == (DEAD_LETTER_KIND, "#buyers-west")
    assert drain_outbox(warehouse, dead, now=later(90000), settings=settings, breaker=breaker).claimed == 0


def test_erp_down_opens_the_circuit_keeps_the_queue_and_drains_it_exactly_once_when_back(tryton, warehouse) -> None:
    actions = [replenishment(tryton.server, f"wb-outage-{i:05d}", lane=i % 4) for i in range(6)]
    for action in actions:
        enqueue(warehouse, action)
    erp = erp_for(tryton.server)
    breaker = CircuitBreaker(failure_threshold=2, cooldown_seconds=1.0)

    def attempts() -> dict[str, int]:
        return {a.action_id: outbox_row(warehouse, a.action_id).attempts for a in actions}

    tryton.down()
    try:
        first = drain_outbox(warehouse, erp, settings=FAST, breaker=breaker)
        assert (first.claimed, first.retry_scheduled, first.deferred) == (2, 2, 4)
        assert breaker.state is CircuitState.OPEN and first.circuit == "open"
        assert sorted(attempts().values()) == [0, 0, 0, 0, 1, 1], "rows never tried keep their attempts"
        statuses = {outbox_row(warehouse, a.action_id).status for a in actions}
        assert statuses <= {"pending", "failed"}, "every row stays queued"

        # While open, a run (even one whose clock says everything is due) calls nothing and burns nothing.
        idle = drain_outbox(warehouse, erp, now=later(), settings=FAST, breaker=breaker)
        assert (idle.claimed, idle.deferred) == (0, 6)
        assert sum(attempts().values()) == 2

        time.sleep(1.1)  # the cool-down passes, the ERP is still down: exactly one probe, which fails
        probe = drain_outbox(warehouse, erp, now=later(), settings=FAST, breaker=breaker)
        assert (probe.claimed, probe.retry_scheduled) == (1, 1)
        assert breaker.state is CircuitState.OPEN
        assert sum(attempts().values()) == 3
    finally:
        tryton.up()

    time.sleep(1.1)
    back = drain_outbox(warehouse, erp, now=later(), settings=FAST, breaker=breaker)
    assert (back.written, back.created, back.dead_lettered) == (6, 6, 0)
    assert breaker.state is CircuitState.CLOSED
    for action in actions:
        row = outbox_row(warehouse, action.action_id)
        assert len(purchases_of(tryton.server, action)) == 1, action.action_id
        assert row.status == "done" and row.reconciled
    assert sum(attempts().values()) == 3 + 6, "the only attempts burned are the real calls"


def test_a_dead_runs_claim_is_taken_again_once_its_lease_expires(tryton, warehouse) -> None:
    stale = replenishment(tryton.server, "wb-lease-expired", lane=4)
    fresh = replenishment(tryton.server, "wb-lease-current", lane=5)
    enqueue(warehouse, stale, status="in_progress", attempts=1, updated_at=clock.now() - timedelta(minutes=6))
    enqueue(warehouse, fresh, status="in_progress", attempts=1, updated_at=clock.now() - timedelta(minutes=1))
    summary = drain_outbox(warehouse, erp_for(tryton.server), settings=FAST, breaker=CircuitBreaker())
    assert summary.written == 1
    row = outbox_row(warehouse, stale.action_id)
    assert (row.status, row.attempts) == ("done", 2)
    assert len(purchases_of(tryton.server, stale)) == 1
    assert outbox_row(warehouse, fresh.action_id).status == "in_progress", "a live run's claim is left alone"
    assert purchases_of(tryton.server, fresh) == []


def test_two_workers_on_sqlite_never_claim_the_same_row(tryton, warehouse) -> None:
    for i in range(3):
        enqueue(warehouse, replenishment(tryton.server, f"wb-claim-sqlite-{i}", lane=i))
    now = clock.now()
    with warehouse.engine.connect() as conn:  # worker B reads its candidates before A commits its claim
        seen_by_b = due_candidates(conn, now, 3, 300)
    with warehouse.engine.begin() as conn:
        a = claim_rows(conn, now, now, 2, 300)
    with warehouse.engine.begin() as conn:
        b = take_rows(conn, seen_by_b, now)
    assert len(seen_by_b) == 3 and len(a) == 2
    assert {c.action_id for c in a}.isdisjoint({c.action_id for c in b})
    assert len(a) + len(b) == 3


def test_two_workers_on_postgres_skip_each_others_locked_rows(postgres_database) -> None:
    warehouse = Warehouse(database_url=postgres_database["url"])
    warehouse.migrate()
    now = clock.now()
    for i in range(4):
        enqueue(warehouse, ReplenishOrder(action_id=f"wb-claim-pg-{i:04d}", sku="S", location_id="DC",
                                          quantity=1, needed_by=TRYTON_AS_OF))
    with warehouse.engine.connect() as conn_a, warehouse.engine.connect() as conn_b:
        tx_a = conn_a.begin()
        a = claim_rows(conn_a, now, now, 2, 300)  # holds its row locks: not committed yet
        with conn_b.begin():
            # Without SKIP LOCKED, B would wait on A's rows; fail fast instead of hanging the test.
            conn_b.execute(text("SET LOCAL lock_timeout = '2s'"))
            b = claim_rows(conn_b, now, now, 4, 300)
        tx_a.commit()
    assert len(a) == 2 and len(b) == 2
    assert {c.action_id for c in a}.isdisjoint({c.action_id for c in b})


def evaluate(instance: dg.DagsterInstance, warehouse: Warehouse):
    context = dg.build_sensor_context(instance=instance, resources={"warehouse": warehouse})
    return outbox_sensor(context)


def test_outbox_sensor_skips_when_idle_and_requests_runs_whose_key_changes_with_the_work(tryton, warehouse, monkeypatch) -> None:
    with dg.instance_for_test() as instance:
        idle = evaluate(instance, warehouse)
        assert isinstance(idle, dg.SkipReason) and "the outbox is empty" in idle.skip_message

        first_action = replenishment(tryton.server, "wb-sensor-00001", lane=0)
        enqueue(warehouse, first_action)
        first = evaluate(instance, warehouse)
        assert isinstance(first, dg.SensorResult) and len(first.run_requests) == 1
        key = first.run_requests[0].run_key
        assert evaluate(instance, warehouse).run_requests[0].run_key == key, "same work, same key"

        enqueue(warehouse, replenishment(tryton.server, "wb-sensor-00002", lane=1))
        second_key = evaluate(instance, warehouse).run_requests[0].run_key
        assert second_key != key, "new work, new key"

        # A run with that key failed before touching the rows: the key is not reused, after a pause.
        run = instance.create_run_for_job(write_back_job, tags={RUN_KEY_TAG: second_key})
        running = evaluate(instance, warehouse)
        assert isinstance(running, dg.SkipReason) and "still" in running.skip_message
        instance.report_run_failed(run)
        paused = evaluate(instance, warehouse)
        assert isinstance(paused, dg.SkipReason) and "unchanged" in paused.skip_message
        monkeypatch.setattr(outbox_module, "RERUN_PAUSE_SECONDS", 0.0)
        retry_key = evaluate(instance, warehouse).run_requests[0].run_key
        assert retry_key == f"{second_key}:2"

        # A real run drains the rows; then the sensor is idle again and says so.
        result = write_back_job.execute_in_process(
            instance=instance, tags={RUN_KEY_TAG: retry_key},
            resources={"warehouse": warehouse, "erp": erp_for(tryton.server), "clock": PlanningClock()},
        )
        assert result.success
        done = evaluate(instance, warehouse)
        assert isinstance(done, dg.SkipReason) and "2 done" in done.skip_message

        # A failed attempt changes the row, so its retry is a new key even though the row set is the same.
        stuck = replenishment(tryton.server, "wb-sensor-00003", lane=2)
        enqueue(warehouse, stuck)
        before = evaluate(instance, warehouse).run_requests[0].run_key
        drain_outbox(warehouse, erp_for(tryton.server, url=f"http://127.0.0.1:{free_port()}"), settings=FAST,
                     breaker=CircuitBreaker(failure_threshold=10))
        time.sleep(0.2)  # its backoff is a fraction of a second
        after = evaluate(instance, warehouse).run_requests[0].run_key
        assert before != after


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_circuit_breaker_opens_after_consecutive_failures_and_probes_once_after_the_cooldown() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=3, cooldown_seconds=30, clock=clock)
    for _ in range(2):
        assert breaker.allow()
        breaker.record_failure()
    breaker.record_success()  # a success in between resets the count
    for _ in range(2):
        breaker.record_failure()
    assert breaker.state is CircuitState.CLOSED and breaker.allow()
    breaker.record_failure()
    assert breaker.state is CircuitState.OPEN and not breaker.allow()
    clock.now += 29
    assert not breaker.allow() and breaker.seconds_until_probe() == pytest.approx(1)
    clock.now += 1
    assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.allow(), "one probe"
    assert not breaker.allow(), "only one probe at a time"
    breaker.record_failure()
    assert breaker.state is CircuitState.OPEN and not breaker.allow(), "a failed probe opens it again"
    clock.now += 30
    assert breaker.allow()
    breaker.release_probe()  # the probe was not made after all
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state is CircuitState.CLOSED and breaker.allow() and breaker.allow()
    assert breaker.snapshot().times_opened == 2


def test_backoff_grows_exponentially_with_bounded_jitter() -> None:
    settings = WriteBackSettings(backoff_seconds=10, backoff_max_seconds=100, backoff_jitter_seconds=5)
    for attempts, low in ((1, 10), (2, 20), (3, 40), (4, 80)):
        delays = [settings.backoff(attempts).total_seconds() for _ in range(50)]
        assert all(low <= d <= min(low + 5, 100) for d in delays), (attempts, min(delays), max(delays))
        assert len(set(delays)) > 1, "jittered"
    assert settings.backoff(10).total_seconds() == 100
