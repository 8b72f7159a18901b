"""The keyed, anchored audit chain: a cut tail is named truncation, a chain rewritten with the project's own
hash function is named rewrite, rows from before the key still verify, and the gateway's PostgreSQL fast path
links under the key too."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from demand_control.resources import Warehouse
from demand_control.services import audit
from demand_control.services.audit import AuditEntry, anchor, append, link_hash, read_anchors, sha256, verify_chain

KEY = b"a secret the database never sees"


def _fill(engine: Engine, n: int, start: int = 0) -> None:
    with engine.begin() as conn:
        append(conn, [AuditEntry("policy", "policy_decision", f"A-{i}", {"i": i, "at": datetime(2026, 3, 2, tzinfo=UTC)})
                      for i in range(start, start + n)])


@pytest.fixture
def keyed(monkeypatch) -> bytes:  # noqa: ANN001
    monkeypatch.setenv("DEMAND_CONTROL_AUDIT_KEY", KEY.decode())
    monkeypatch.delenv("DEMAND_CONTROL_AUDIT_KEY_FILE", raising=False)
    return KEY


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request, tmp_path: Path) -> Engine:  # noqa: ANN001
    if request.param == "sqlite":
        warehouse = Warehouse(home=str(tmp_path / "state"))
    else:
        warehouse = Warehouse(database_url=str(request.getfixturevalue("postgres_database")["url"]))
    warehouse.migrate()
    return warehouse.engine


def _disable_guards(conn) -> None:  # noqa: ANN001
    """What a database superuser (or the file's owner, on SQLite) can always do."""
    if conn.dialect.name == "sqlite":
        conn.execute(text("DROP TRIGGER audit_log_no_update"))
        conn.execute(text("DROP TRIGGER audit_log_no_delete"))
    else:
        conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))


def test_deleting_the_last_20_rows_is_named_truncation(engine: Engine, keyed: bytes, tmp_path: Path) -> None:
    checkpoints = tmp_path / "checkpoints.jsonl"
    _fill(engine, 50)
    mark = anchor(engine, checkpoints, by="plan")
    assert (mark.audit_id, mark.keyed_from) == (50, 1)
    with engine.begin() as conn:
        _disable_guards(conn)
        conn.execute(text("DELETE FROM audit_log WHERE audit_id > 30"))
    assert verify_chain(engine).ok  # without the anchor, a cut tail is a shorter valid chain
    report = verify_chain(engine, anchors=read_anchors(checkpoints))
    assert not report.ok and report.kind == "truncated" and report.rows == 30
    assert "ends at row 30" in report.reason and "names row 50" in report.reason


def test_deleting_the_anchored_row_is_named_truncation(tmp_path: Path, keyed: bytes) -> None:
    warehouse = Warehouse(home=str(tmp_path / "state"))
    warehouse.migrate()
    _fill(warehouse.engine, 10)
    mark = anchor(warehouse.engine, tmp_path / "c.jsonl")
    _fill(warehouse.engine, 5, start=10)
    with warehouse.engine.begin() as conn:
        _disable_guards(conn)
        conn.execute(text("DELETE FROM audit_log WHERE audit_id = 10"))
    report = verify_chain(warehouse.engine, anchors=[mark])
    assert report.kind == "truncated" and report.broken_at == 10 and "row 10, anchored at" in report.reason


@pytest.mark.postgres
@pytest.mark.parametrize("first_rewritten", [11, 35])
def test_rewriting_from_a_row_with_the_projects_hash_function_is_named_rewrite(postgres_database, keyed: bytes, tmp_path: Path,
                                                                                first_rewritten: int) -> None:
    """The owner disables the trigger and recomputes every link from a row on with `link_hash`: without the key
    the links it can compute are plain SHA-256, which a keyed chain refuses, before the last anchor (row 30)
    and after it."""
    warehouse = Warehouse(database_url=str(postgres_database["url"]))
    warehouse.migrate()
    _fill(warehouse.engine, 30)
    anchor(warehouse.engine, tmp_path / "checkpoints.jsonl")
    _fill(warehouse.engine, 10, start=30)  # written after the last anchor
    with warehouse.engine.begin() as conn:
        _disable_guards(conn)
        rows = conn.execute(text("SELECT * FROM audit_log ORDER BY audit_id")).mappings().all()
        prev = rows[first_rewritten - 2]["row_hash"]
        for row in rows[first_rewritten - 1:]:
            payload = row["payload"].replace('"i":', '"i":1') if row["audit_id"] == first_rewritten else row["payload"]
            payload_hash = sha256(payload)
            row_hash = link_hash(prev, row["occurred_at"], row["actor"], row["event_type"], row["subject"], payload_hash, key=None)
            conn.execute(text("UPDATE audit_log SET payload = :p, payload_hash = :ph, prev_hash = :prev, row_hash = :h WHERE audit_id = :id"),
                         {"p": payload, "ph": payload_hash, "prev": prev, "h": row_hash, "id": row["audit_id"]})
            prev = row_hash
        conn.execute(text("ALTER TABLE audit_log ENABLE TRIGGER USER"))
    report = verify_chain(warehouse.engine, anchors=read_anchors(tmp_path / "checkpoints.jsonl"))
    assert not report.ok and report.kind == "rewritten" and report.broken_at == first_rewritten
    assert "unkeyed link in a chain keyed since row 1" in report.reason


def test_unkeyed_chain_rewritten_before_the_anchor_is_caught_by_the_anchor(engine: Engine, tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """In unkeyed (demo) mode anyone can recompute the links; the anchor outside the database still names it."""
    monkeypatch.delenv("DEMAND_CONTROL_AUDIT_KEY", raising=False)
    monkeypatch.delenv("DEMAND_CONTROL_AUDIT_KEY_FILE", raising=False)
    _fill(engine, 12)
    anchor(engine, tmp_path / "c.jsonl")
    with engine.begin() as conn:
        _disable_guards(conn)
        rows = conn.execute(text("SELECT * FROM audit_log ORDER BY audit_id")).mappings().all()
        prev = rows[4]["row_hash"]
        for row in rows[5:]:
            actor = "someone else" if row["audit_id"] == 6 else row["actor"]
            row_hash = link_hash(prev, row["occurred_at"], actor, row["event_type"], row["subject"], row["payload_hash"])
            conn.execute(text("UPDATE audit_log SET actor = :a, prev_hash = :prev, row_hash = :h WHERE audit_id = :id"),
                         {"a": actor, "prev": prev, "h": row_hash, "id": row["audit_id"]})
            prev = row_hash
    assert verify_chain(engine).ok  # the rewritten chain is self-consistent
    report = verify_chain(engine, anchors=read_anchors(tmp_path / "c.jsonl"))
    assert report.kind == "rewritten" and report.broken_at == 12 and "differs from the anchor" in report.reason


def test_rows_from_before_the_key_still_verify_and_are_named(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """The migration path: old rows keep their plain links; the re-anchor records where keyed rows begin, and a
    forged unkeyed row there is refused."""
    warehouse = Warehouse(home=str(tmp_path / "state"))
    warehouse.migrate()
    monkeypatch.delenv("DEMAND_CONTROL_AUDIT_KEY", raising=False)
    _fill(warehouse.engine, 4)
    monkeypatch.setenv("DEMAND_CONTROL_AUDIT_KEY", KEY.decode())
    reanchor = anchor(warehouse.engine, tmp_path / "c.jsonl")  # right after setting the key
    assert (reanchor.audit_id, reanchor.keyed_from) == (4, 5)
    _fill(warehouse.engine, 3, start=4)
    mark = anchor(warehouse.engine, tmp_path / "c.jsonl")
    report = verify_chain(warehouse.engine, anchors=read_anchors(tmp_path / "c.jsonl"))
    assert report.ok and report.rows == 7 and report.keyed_from == 5 and mark.keyed_from == 5
    monkeypatch.delenv("DEMAND_CONTROL_AUDIT_KEY")
    unkeyed = verify_chain(warehouse.engine)
    assert not unkeyed.ok and unkeyed.broken_at == 5 and "DEMAND_CONTROL_AUDIT_KEY" in unkeyed.reason


def test_after_the_reanchor_a_row_written_without_the_key_is_refused(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """Between the re-anchor and the first keyed row, rows rewritten (or a writer left) without the key are
    named: the anchor promised every row after it is keyed."""
    warehouse = Warehouse(home=str(tmp_path / "state"))
    warehouse.migrate()
    monkeypatch.delenv("DEMAND_CONTROL_AUDIT_KEY", raising=False)
    _fill(warehouse.engine, 4)
    anchor(warehouse.engine, tmp_path / "c.jsonl", key=KEY)
    _fill(warehouse.engine, 2, start=4)  # a writer without the key
    report = verify_chain(warehouse.engine, key=KEY, anchors=read_anchors(tmp_path / "c.jsonl"))
    assert report.kind == "rewritten" and report.broken_at == 5 and "keyed since row 5" in report.reason


def test_a_key_file_keys_the_chain(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    key_file = tmp_path / "audit.key"
    key_file.write_bytes(KEY + b"\n")
    monkeypatch.delenv("DEMAND_CONTROL_AUDIT_KEY", raising=False)
    monkeypatch.setenv("DEMAND_CONTROL_AUDIT_KEY_FILE", str(key_file))
    warehouse = Warehouse(home=str(tmp_path / "state"))
    warehouse.migrate()
    _fill(warehouse.engine, 2)
    assert verify_chain(warehouse.engine, key=KEY).keyed_from == 1
    monkeypatch.setenv("DEMAND_CONTROL_AUDIT_KEY_FILE", str(tmp_path / "missing.key"))
    with pytest.raises(ValueError, match="missing.key.*cannot be read"):
        verify_chain(warehouse.engine)


@pytest.mark.postgres
def test_sql_link_hash_is_link_hash(postgres_database) -> None:  # noqa: ANN001
    """The formula the gateway's PostgreSQL fast path computes in the database equals `link_hash`, keyed and not."""
    import psycopg2

    occurred = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    rest = "|" + "|".join((audit._timestamp(occurred), "gateway:acme", "event_received", "wh-1", "p" * 64))
    sql = "SELECT " + audit.SQL_LINK_HASH.format(message="%(prev)s || %(link_rest)s")
    with psycopg2.connect(str(postgres_database["url"]).replace("+psycopg2", "")) as conn, conn.cursor() as cur:
        for key in (KEY, b"k" * 100, None):
            cur.execute(sql, {"prev": "a" * 64, "link_rest": rest, **audit.sql_link_params(key)})
            assert cur.fetchone()[0] == link_hash("a" * 64, occurred, "gateway:acme", "event_received", "wh-1", "p" * 64, key=key)


@pytest.mark.postgres
def test_gateway_fast_path_appends_keyed_links(postgres_database, keyed: bytes) -> None:  # noqa: ANN001
    from demand_control.gateway.inbox import InboxWriter
    from demand_control.gateway.schemas import parse_event
    from demand_control.infra import clock
    from tests.gateway.test_gateway import SOURCE, delay, encode

    warehouse = Warehouse(database_url=str(postgres_database["url"]))
    warehouse.migrate()
    _fill(warehouse.engine, 2)
    writer = InboxWriter(warehouse)
    assert writer._fast
    body = encode(delay())
    event, now = parse_event(body.decode()), clock.now()
    writer.store(SOURCE, "keyed-1", now, event, body.decode(), "0" * 64, now)
    _fill(warehouse.engine, 1, start=2)
    report = verify_chain(warehouse.engine)
    assert report.ok and report.rows == 4 and report.keyed_from == 1


def test_each_plan_anchors_the_chain_in_its_metadata_and_the_checkpoint_file(tmp_path: Path, keyed: bytes, monkeypatch) -> None:  # noqa: ANN001
    import dagster as dg

    from demand_control.demand_assets.kpis import coordination_kpis_asset
    from demand_control.resources.clock import PlanningClock

    monkeypatch.delenv("DEMAND_CONTROL_AUDIT_CHECKPOINTS", raising=False)
    warehouse = Warehouse(home=str(tmp_path / "state"))
    warehouse.migrate()
    _fill(warehouse.engine, 3)
    result = dg.materialize([coordination_kpis_asset], resources={"warehouse": warehouse, "clock": PlanningClock()})
    metadata = result.asset_materializations_for_node("coordination_kpis")[0].metadata
    tail = warehouse.read("audit_log").iloc[-1]
    assert metadata["audit_head_sequence"].value == 3 and metadata["audit_head_hash"].value == tail["row_hash"]
    anchors = read_anchors(tmp_path / "state" / "audit_checkpoints.jsonl")
    assert [(a.audit_id, a.row_hash, a.keyed_from) for a in anchors] == [(3, tail["row_hash"], 1)]
    assert anchors[0].by == f"run {result.run_id}"


def test_cli_verify_names_truncation_and_anchor_takes_the_head(tmp_path: Path, keyed: bytes, monkeypatch) -> None:  # noqa: ANN001
    from typer.testing import CliRunner

    from demand_control.cli.main import app

    monkeypatch.setenv("DEMAND_CONTROL_HOME", str(tmp_path))
    monkeypatch.delenv("DEMAND_CONTROL_DATABASE_URL", raising=False)
    monkeypatch.setenv("DEMAND_CONTROL_AUDIT_CHECKPOINTS", str(tmp_path / "elsewhere" / "anchors.jsonl"))
    warehouse = Warehouse(home=str(tmp_path))
    warehouse.migrate()
    _fill(warehouse.engine, 25)
    taken = CliRunner().invoke(app, ["audit", "anchor"])
    assert taken.exit_code == 0 and "anchored row 25" in taken.output and "keyed from row 1" in taken.output
    ok = CliRunner().invoke(app, ["audit", "verify"])
    assert ok.exit_code == 0 and "25 rows verified, keyed from row 1; 1 of 1 anchors" in ok.output
    with warehouse.engine.begin() as conn:
        _disable_guards(conn)
        conn.execute(text("DELETE FROM audit_log WHERE audit_id > 5"))
    cut = CliRunner().invoke(app, ["audit", "verify"])
    assert cut.exit_code == 1 and "audit chain TRUNCATED after 5 good rows" in cut.output
    copy = tmp_path / "copy-from-worm.jsonl"
    copy.write_text((tmp_path / "elsewhere" / "anchors.jsonl").read_text())
    cut_too = CliRunner().invoke(app, ["audit", "verify", "--checkpoints", str(copy)])
    assert cut_too.exit_code == 1 and "TRUNCATED" in cut_too.output
    (tmp_path / "elsewhere" / "anchors.jsonl").write_text("not json\n")
    broken = CliRunner().invoke(app, ["audit", "verify"])
    assert broken.exit_code == 2 and "line 1 is not an anchor" in broken.output and "Traceback" not in broken.output
