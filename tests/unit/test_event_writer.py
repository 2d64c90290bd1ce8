"""EventWriter.flush(run_id) waits only for that run's pending events."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

from runtime.runs.broker import Broker
from runtime.runs.events import EventDraft, RunEvent, make_event
from runtime.runs.writer import EventWriter


class GatedStore:
    """An EventStore stand-in whose writes wait until the test opens the gate."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.written: list[tuple[uuid.UUID, int]] = []

    async def insert_batch(self, rows: list) -> None:  # type: ignore[type-arg]
        await self.gate.wait()
        self.written.extend((r.run_id, r.seq) for r in rows)


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
