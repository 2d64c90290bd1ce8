"""What the database refuses for its data never stalls a run (through the API, on a real
Postgres): an event it refuses is stored as an ``EVENT_UNSTORABLE`` marker with the same seq
and type while the rest of the run's events are written and it completes; a status write it
refuses fails the run with ``RUN_STATUS_UNSTORABLE``; NUL in a model's text is stored as
U+FFFD, so reading the turn's text back (a restarted run does) works.

The refusals are made by CHECK constraints this test adds to its own database: after
runtime/runs/events.py:to_json stores everything Python's ``json`` reads in a form Postgres
takes, no payload a model can send is refused, but a refusal must still not wedge the
event writer (it retried every storage error forever) or a run's actor."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime

import asyncpg
import pytest

from runtime.runs.broker import Broker
from runtime.runs.events import EventDraft, make_event
from runtime.runs.writer import EventWriter
from storage.events import EventStore
from storage.runs import RunStore
from tests.support.fixtures_openai import scripted_openai  # noqa: F401
from tests.support.runs import create_run, read_stream, runs_url
from tests.support.scripted_openai import text_reply


@pytest.fixture
def settings(make_settings):
    # The scripted model listens on loopback, which the default egress policy refuses.
    return make_settings(scripted_engine_enabled=True, egress_allowed_networks=("127.0.0.0/8",))


async def _refuse(database_url: str, constraint: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(constraint)
    finally:
        await conn.close()


async def test_an_event_the_database_refuses_is_stored_as_a_marker_and_the_run_completes(
    client, owner, app_and_draft, database_url
):
    await _refuse(database_url, "ALTER TABLE run_events ADD CONSTRAINT poison CHECK "
                  "(type <> 'assistant.delta' OR payload::text NOT LIKE '%POISON%')")  # fmt: skip
    app, _ = app_and_draft
    script = [{"delta": "fine "}, {"sleep_ms": 300}, {"delta": "POISON"}, {"sleep_ms": 300},
              {"plan": {"summary": "after it"}}, {"delta": "still fine"}]  # fmt: skip
    run = await create_run(client, app["id"], owner.headers, input="x", engine="scripted",
                           script=script)  # fmt: skip
    _, live = await read_stream(client, app["id"], run["run_id"], owner.headers, within=60)
    _, stored = await read_stream(client, app["id"], run["run_id"], owner.headers, within=60)
    for events in (live, stored):
        data = [e["data"] for e in events]
        assert [d["seq"] for d in data] == list(range(1, len(data) + 1))  # contiguous
        assert data[-1]["event"] == "run.completed"
        assert data[-1]["payload"]["status"] == "completed"
        deltas = [d for d in data if d["event"] == "assistant.delta"]
        markers = [d for d in deltas if d["payload"].get("unstorable")]
        assert len(markers) == 1, deltas
        assert markers[0]["payload"] == {"unstorable": True, "reason": "CheckViolationError"}
        assert markers[0]["diagnostics"][0]["code"] == "EVENT_UNSTORABLE"
        assert any(d["payload"].get("content") == "still fine" for d in deltas)
        assert any(d["event"] == "plan.updated" for d in data)
    assert [e["data"] for e in stored] == [e["data"] for e in live]


async def test_a_status_write_the_database_refuses_fails_the_run_with_a_clear_error(
    client, owner, app_and_draft, database_url
):
    await _refuse(database_url, "ALTER TABLE agent_runs ADD CONSTRAINT poison CHECK "
                  "(error_message IS NULL OR error_message NOT LIKE '%POISON%')")  # fmt: skip
    app, _ = app_and_draft
    run = await create_run(client, app["id"], owner.headers, input="x", engine="scripted",
                           script=[{"delta": "a"}, {"fail": "POISON"}])  # fmt: skip
    _, events = await read_stream(client, app["id"], run["run_id"], owner.headers, within=60)
    last = events[-1]["data"]
    assert last["event"] == "run.failed"
    assert "could not be stored" in last["payload"]["error"]
    assert "CheckViolationError" in last["payload"]["error"]
    assert any(d.get("code") == "RUN_STATUS_UNSTORABLE" for d in last["diagnostics"])
    got = await client.get(runs_url(app["id"], f"/{run['run_id']}"), headers=owner.headers)
    body = await got.get_json()
    assert body["status"] == "failed"
    assert "could not be stored" in body["error"]


async def test_nul_in_model_text_is_stored_as_replacement_and_the_turn_text_reads_back(
    client,
    owner,
    db,
    native_app,
    scripted_openai,  # noqa: F811
):
    app, _ = native_app
    scripted_openai.push(text_reply("a\u0000b\ud800c"))
    run = await create_run(client, app["id"], owner.headers, input="x")
    _, events = await read_stream(client, app["id"], run["run_id"], owner.headers, within=60)
    assert events[-1]["data"]["payload"]["status"] == "completed"
    deltas = [e["data"] for e in events if e["data"]["event"] == "assistant.delta"]
    assert "".join(d["payload"]["content"] for d in deltas) == "a\ufffdb\ufffdc"
    run_id = uuid.UUID(run["run_id"])
    runs = RunStore(db)
    # What a restarted attempt reads first (events_turn_text, ->> on the stored json text)
    # for a turn whose text held NUL: as a crash or a drain-requeue leaves the log.
    store = EventStore(db)
    seq = await store.last_seq(run_id)
    event = make_event(EventDraft("assistant.delta", {"content": "x\u0000y"}), run_id=run_id,
                       app_id=uuid.UUID(app["id"]), seq=seq + 1, ts=datetime.now(UTC))  # fmt: skip
    await store.insert_batch([event.row])
    assert await runs.turn_text(run_id) == "x\ufffdy"


async def test_the_writer_isolates_a_refused_event_and_writes_every_other_run_s_events(
    client, owner, app_and_draft, db, database_url
):
    """One batch (the writer's unit of work) holding several runs' events and one refused
    event: everything else is stored in order, the refused event as its marker."""
    await _refuse(database_url, "ALTER TABLE run_events ADD CONSTRAINT poison CHECK "
                  "(payload::text NOT LIKE '%POISON%')")  # fmt: skip
    app, _ = app_and_draft
    runs = []
    for name in ("a", "b"):
        run = await create_run(client, app["id"], owner.headers, input=name, engine="scripted",
                               script=[{"delta": name}])  # fmt: skip
        await read_stream(client, app["id"], run["run_id"], owner.headers, within=60)
        runs.append(uuid.UUID(run["run_id"]))
    store = EventStore(db)
    first = {run_id: await store.last_seq(run_id) + 1 for run_id in runs}
    batch = []
    for i in range(6):
        for run_id in runs:
            text = "POISON" if (run_id, i) == (runs[0], 3) else f"t{i}"
            batch.append(make_event(EventDraft("assistant.delta", {"content": text}),
                                    run_id=run_id, app_id=uuid.UUID(app["id"]),
                                    seq=first[run_id] + i, ts=datetime.now(UTC)))  # fmt: skip
    broker = Broker(queue_max=64, keepalive_seconds=60)
    writer = EventWriter(store, broker)
    await writer.start()
    try:
        writer.submit(batch)
        await asyncio.wait_for(writer.flush(), 30)
    finally:
        await writer.stop()
    for run_id in runs:
        rows = await store.read_from(run_id, first[run_id])
        assert [r.seq for r in rows] == [first[run_id] + i for i in range(6)]
        payloads = [json.loads(r.payload) for r in rows]
        if run_id == runs[0]:
            assert payloads[3] == {"unstorable": True, "reason": "CheckViolationError"}
            del payloads[3]
        assert all(p["content"].startswith("t") for p in payloads)
