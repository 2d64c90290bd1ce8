"""The event writer: flush(run_id) waits only for that run's events; failed writes are
retried and never dropped, a crashed task restarts, a deleted run's events alone are
discarded, and past its limit producers wait (issue 10, part 2 item 1)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

from runtime.runs.broker import Broker
from runtime.runs.events import EventDraft, RunEvent, make_event
from runtime.runs.writer import EventWriter
from storage.errors import DatabaseUnavailable, ForeignKeyViolation


class GatedStore:
    """An EventStore stand-in whose writes wait until the test opens the gate."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.written: list[tuple[uuid.UUID, int]] = []

    async def insert_fenced(self, rows: list, tokens: list) -> set:  # type: ignore[type-arg]
        await self.gate.wait()
        self.written.extend((r.run_id, r.seq) for r in rows)
        return set()


def _event(run_id: uuid.UUID, seq: int) -> RunEvent:
    draft = EventDraft("plan.updated", {"summary": "x"})
    return make_event(draft, run_id=run_id, app_id=uuid.uuid4(), seq=seq, ts=datetime.now(UTC))


async def test_flush_of_a_run_without_pending_events_does_not_wait_for_others() -> None:
    store = GatedStore()
    writer = EventWriter(store, Broker(queue_max=16, keepalive_seconds=60))  # type: ignore[arg-type]
    await writer.start()
    try:
        busy, idle = uuid.uuid4(), uuid.uuid4()
        writer.submit([_event(busy, 2)])
        await asyncio.wait_for(writer.flush(idle), 1.0)  # nothing of `idle` pending
        waiting = asyncio.create_task(writer.flush(busy))
        everything = asyncio.create_task(writer.flush())
        await asyncio.sleep(0.05)
        assert not waiting.done() and not everything.done()
        store.gate.set()
        await asyncio.wait_for(asyncio.gather(waiting, everything), 1.0)
        assert store.written == [(busy, 2)]
        await asyncio.wait_for(writer.flush(busy), 1.0)  # persisted: returns at once
    finally:
        store.gate.set()
        await writer.stop()


class FlakyStore:
    """An EventStore stand-in that fails as scripted: ``errors`` are raised by the next
    writes (one each), then writes succeed; rows of ``deleted`` runs violate the foreign
    key as Postgres would."""

    def __init__(self, errors: list[BaseException] | None = None) -> None:
        self.errors = list(errors or [])
        self.deleted: set[uuid.UUID] = set()
        self.gate = asyncio.Event()
        self.gate.set()
        self.written: list[tuple[uuid.UUID, int]] = []
        self.attempts = 0

    async def insert_fenced(self, rows: list, tokens: list) -> set:  # type: ignore[type-arg]
        await self.gate.wait()
        self.attempts += 1
        if self.errors:
            raise self.errors.pop(0)
        if any(r.run_id in self.deleted for r in rows):
            raise ForeignKeyViolation("run_events_run_id_fkey")
        self.written.extend((r.run_id, r.seq) for r in rows)
        return set()


def _writer(store: object, **kwargs: int) -> tuple[EventWriter, Broker]:
    broker = Broker(queue_max=10_000, keepalive_seconds=60)
    return EventWriter(store, broker, **kwargs), broker  # type: ignore[arg-type]


async def test_failed_writes_are_retried_until_they_succeed_and_nothing_is_dropped() -> None:
    down = DatabaseUnavailable("InternalClientError: cannot switch to state 12")
    store = FlakyStore([down, DatabaseUnavailable("ConnectionDoesNotExistError"), down])
    writer, broker = _writer(store)
    run = uuid.uuid4()
    sub = broker.subscribe(run)
    await writer.start()
    try:
        writer.submit([_event(run, seq) for seq in (1, 2, 3)])
        assert writer.unhealthy_reason() is None
        await asyncio.wait_for(writer.flush(run), 30)
        assert store.attempts == 4
        assert store.written == [(run, 1), (run, 2), (run, 3)]
        assert [e.seq for e in await sub.next_batch() or []] == [1, 2, 3]
        assert writer.unhealthy_reason() is None
    finally:
        broker.unsubscribe(sub)
        await writer.stop()


async def test_a_writer_that_retries_reports_it_until_a_write_succeeds() -> None:
    store = FlakyStore([DatabaseUnavailable("down")] * 100)
    writer, _ = _writer(store)
    await writer.start()
    try:
        writer.submit([_event(uuid.uuid4(), 1)])
        for _ in range(3000):  # up to 30 s on a busy machine
            if writer.unhealthy_reason() is not None:
                break
            await asyncio.sleep(0.01)
        assert writer.unhealthy_reason() == "retrying failed writes"
        store.errors.clear()
        await asyncio.wait_for(writer.flush(), 30)
        assert writer.unhealthy_reason() is None
    finally:
        await writer.stop()
    assert writer.unhealthy_reason() == "not running"


async def test_the_writing_task_is_restarted_after_a_crash_without_losing_events() -> None:
    store = FlakyStore([RuntimeError("a bug in the write path")])
    writer, _ = _writer(store)
    run = uuid.uuid4()
    await writer.start()
    try:
        writer.submit([_event(run, 1), _event(run, 2)])
        await asyncio.wait_for(writer.flush(run), 30)
        assert store.written == [(run, 1), (run, 2)]
        assert writer.unhealthy_reason() is None
    finally:
        await writer.stop()


async def test_only_the_events_of_a_deleted_run_are_discarded() -> None:
    store = FlakyStore()
    writer, _ = _writer(store)
    kept, gone = uuid.uuid4(), uuid.uuid4()
    store.deleted.add(gone)
    store.gate.clear()  # both runs' events land in one batch
    await writer.start()
    try:
        writer.submit([_event(kept, 1), _event(gone, 1), _event(kept, 2)])
        store.gate.set()
        await asyncio.wait_for(writer.flush(), 30)
        assert store.written == [(kept, 1), (kept, 2)]
    finally:
        await writer.stop()


async def test_past_the_limit_producers_wait_and_no_event_is_refused() -> None:
    store = FlakyStore()
    store.gate.clear()  # Postgres "stalls"
    writer, _ = _writer(store, max_pending=100, max_batch=50)
    run = uuid.uuid4()
    await writer.start()
    try:
        writer.submit([_event(run, seq) for seq in range(1, 121)])  # never refused
        assert writer.over_limit and writer.pending == 120
        waiting = asyncio.create_task(writer.wait_for_room())
        await asyncio.sleep(0.05)
        assert not waiting.done()
        store.gate.set()
        await asyncio.wait_for(waiting, 30)
        await asyncio.wait_for(writer.flush(run), 30)
        assert [seq for _, seq in store.written] == list(range(1, 121))
        assert not writer.over_limit
        await asyncio.wait_for(writer.wait_for_room(), 1)  # room: returns at once
    finally:
        await writer.stop()


class FencingStore:
    """An EventStore stand-in that refuses the events of runs whose claim token moved on
    (``tokens``: run -> its current token), as events_write_fenced does."""

    def __init__(self, tokens: dict[uuid.UUID, int]) -> None:
        self.tokens = tokens
        self.written: list[tuple[uuid.UUID, int]] = []

    async def insert_fenced(self, rows: list, tokens: list) -> set:  # type: ignore[type-arg]
        refused = {r.run_id for r, t in zip(rows, tokens, strict=True)
                   if t is not None and t != self.tokens[r.run_id]}  # fmt: skip
        self.written.extend((r.run_id, r.seq) for r in rows if r.run_id not in refused)
        return refused


async def test_events_of_a_run_another_node_took_are_refused_reported_and_not_published() -> None:
    """docs/design.md 9 (fencing): a stale claim's events are not stored or published;
    the run is reported once with that token; other runs of the batch are unaffected."""
    stale, fresh = uuid.uuid4(), uuid.uuid4()
    store = FencingStore({stale: 2, fresh: 1})
    reported: list[tuple[uuid.UUID, int]] = []
    broker = Broker(queue_max=100, keepalive_seconds=60)
    writer = EventWriter(store, broker, on_fenced=lambda run, token: reported.append((run, token)))  # type: ignore[arg-type]
    stale_sub, fresh_sub = broker.subscribe(stale), broker.subscribe(fresh)
    await writer.start()
    try:

        def event(run: uuid.UUID, seq: int, fence: int) -> RunEvent:
            draft = EventDraft("plan.updated", {"summary": "x"})
            return make_event(draft, run_id=run, app_id=uuid.uuid4(), seq=seq,
                              ts=datetime.now(UTC), fence=fence)  # fmt: skip

        writer.submit([event(stale, 5, 1), event(fresh, 2, 1), event(stale, 6, 1)])
        await asyncio.wait_for(writer.flush(), 30)  # refused events do not hold a flush
        assert store.written == [(fresh, 2)]
        assert reported == [(stale, 1)]
        assert [e.seq for e in await fresh_sub.next_batch() or []] == [2]
        assert not stale_sub.has_after(0)  # nothing of the stale run was published
    finally:
        broker.unsubscribe(stale_sub)
        broker.unsubscribe(fresh_sub)
        await writer.stop()
