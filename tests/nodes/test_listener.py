"""The node listener (runtime/cluster/listener.py) against the real Postgres: it delivers
notifications, says "look for yourself" (None) on connect and on every poll tick,
reconnects and LISTENs again after its connection is terminated (readiness red
meanwhile), and the event batch insert announces ``rw_events`` only when it commits."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from runtime.cluster import channels
from runtime.cluster.listener import APPLICATION_NAME, Listener
from runtime.settings import Settings
from storage.database import Database
from storage.events import EventRow, EventStore
from storage.notify import notify
from storage.runs import RunStore
from tests.support.runs import create_run, wait_status
from tests.support.seed import Seeded

NODE = "listener-test"


class Inbox:
    """Collects what a subscriber got; waits for a condition on it."""

    def __init__(self) -> None:
        self.got: list[str | None] = []
        self._changed = asyncio.Event()

    def __call__(self, payload: str | None) -> None:
        self.got.append(payload)
        self._changed.set()

    async def until(self, predicate: object, within: float = 60.0) -> None:
        async def wait() -> None:
            while not predicate(self.got):  # type: ignore[operator]
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(wait(), within)


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(scripted_engine_enabled=True)


@pytest.fixture
async def listener(database_url: str) -> AsyncIterator[Listener]:
    node = Listener(lambda: database_url, node_id=NODE, poll_seconds=0.5)
    await node.start()
    try:
        yield node
    finally:
        await node.stop()


async def _until(condition: Callable[[], bool], within: float = 60.0) -> None:
    """Wait until ``condition()`` (checked every 5 ms: the listener runs on this loop, so
    even its 50 ms back-off is observed)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        if condition():
            return
        assert loop.time() < deadline, "condition not met"
        await asyncio.sleep(0.005)


async def _until_ready(listener: Listener) -> None:
    await _until(lambda: listener.unhealthy_reason() is None)


async def test_delivers_notifications_and_poll_ticks(listener: Listener, db: Database) -> None:
    inbox = Inbox()
    listener.subscribe(channels.WORK, inbox)
    await _until_ready(listener)
    await notify(db, channels.WORK, "run-1")
    await inbox.until(lambda got: "run-1" in got)
    count = inbox.got.count(None)
    await inbox.until(lambda got: got.count(None) >= count + 2)  # the slow poll ticks


async def test_reconnects_and_listens_again_after_termination(
    listener: Listener, db: Database, database_url: str
) -> None:
    inbox = Inbox()
    listener.subscribe(channels.COMMANDS, inbox)
    await _until_ready(listener)
    conn = await asyncpg.connect(database_url)
    try:
        pid = await conn.fetchval(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1",
            f"{APPLICATION_NAME} {NODE}",
        )
        assert pid is not None
        assert await conn.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await conn.close()

    await _until(lambda: listener.unhealthy_reason() is not None)  # red while reconnecting
    await _until_ready(listener)
    await notify(db, channels.COMMANDS, "after")
    await inbox.until(lambda got: "after" in got)


async def test_event_batches_announce_their_runs_on_commit(
    listener: Listener, db: Database, client: Any, owner: Seeded, settings: Settings
) -> None:
    inbox, work = Inbox(), Inbox()
    listener.subscribe(channels.EVENTS, inbox)
    listener.subscribe(channels.WORK, work)
    await _until_ready(listener)
    app = await client.post("/admin/apps", json={"name": "n", "slug": "notify"},
                            headers=owner.headers)  # fmt: skip
    app_id = (await app.get_json())["id"]
    run = await create_run(client, app_id, owner.headers, input="x", engine="scripted",
                           script=[{"delta": "hello"}])  # fmt: skip
    run_id = uuid.UUID(run["run_id"])
    await wait_status(client, app_id, str(run_id), owner.headers, {"completed"}, within=60.0)
    # The last batch (the terminal event, written with the status) announced the last seq,
    # with the writing node's id as its origin.
    stored = await EventStore(db).last_seq(run_id)
    node_id = settings.node_id

    def announced(seq: int, origin: str) -> Callable[[list[str | None]], bool]:
        return lambda got: (
            (run_id, seq, origin) in {channels.parse_events(p) for p in got if p is not None}
        )

    await inbox.until(announced(stored, node_id))
    # The run's insert announced it on rw_work with the same origin.
    await work.until(lambda got: f"{run_id}:{node_id}" in got)
    assert channels.work_origin(f"{run_id}:{node_id}") == node_id
    # A batch whose transaction rolls back is never announced.
    with pytest.raises(RuntimeError):
        async with db.transaction() as tx:
            row = EventRow(run_id, stored + 1, "plan.updated", "plan", "{}", "[]",
                           datetime.now(UTC))  # fmt: skip
            await EventStore(tx).insert_batch([row])
            raise RuntimeError("roll back")
    await notify(db, channels.EVENTS, "marker")
    await inbox.until(lambda got: "marker" in got)
    assert not any(p.startswith(f"{run_id}:{stored + 1}:") for p in inbox.got if p is not None)
    # A store without a node (a tool, this test) announces with an empty origin.
    async with db.transaction() as tx:
        row = EventRow(run_id, stored + 1, "plan.updated", "plan", "{}", "[]", datetime.now(UTC))
        await EventStore(tx).insert_batch([row])
    await inbox.until(announced(stored + 1, ""))


async def test_fenced_batches_announce_their_runs_on_commit(
    listener: Listener, db: Database, client: Any, owner: Seeded
) -> None:
    """The executors' batch (events_write_fenced) announces each run it stored events of,
    also when it refused none (before, its announcement was a CTE that only ran when a run
    was refused), and never a run whose events it refused."""
    inbox = Inbox()
    listener.subscribe(channels.EVENTS, inbox)
    await _until_ready(listener)
    app = await client.post("/admin/apps", json={"name": "f", "slug": "fenced"},
                            headers=owner.headers)  # fmt: skip
    app_id = (await app.get_json())["id"]
    run = await create_run(client, app_id, owner.headers, input="x", engine="scripted",
                           script=[{"delta": "hello"}])  # fmt: skip
    run_id = uuid.UUID(run["run_id"])
    await wait_status(client, app_id, str(run_id), owner.headers, {"completed"}, within=60.0)
    stored = await EventStore(db).last_seq(run_id)
    token = (await RunStore(db).get(run_id))["claim_token"]  # the token it holds now
    row = EventRow(run_id, stored + 1, "plan.updated", "plan", "{}", "[]", datetime.now(UTC))
    assert await EventStore(db, "node-f").insert_fenced([row], [token]) == set()
    await inbox.until(lambda got: f"{run_id}:{stored + 1}:node-f" in got)
    # A refused run (its claim token moved on) is not announced.
    late = EventRow(run_id, stored + 2, "plan.updated", "plan", "{}", "[]", datetime.now(UTC))
    assert await EventStore(db, "node-f").insert_fenced([late], [-1]) == {run_id}
    await notify(db, channels.EVENTS, "marker")
    await inbox.until(lambda got: "marker" in got)
    assert f"{run_id}:{stored + 2}:node-f" not in inbox.got
