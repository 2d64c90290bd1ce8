"""The batched event writer: persist, then publish (DESIGN.md section 4).

Actors hand numbered events to :meth:`EventWriter.submit` (through the loop port). One task
drains everything submitted so far into a single ``unnest`` INSERT, and only after the
commit publishes the batch to the broker, which is what makes subscribe-then-backlog
gap-free. A failed write is retried with back-off; events are never dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

from runtime.runs.broker import Broker
from runtime.runs.events import RunEvent
from runtime.tasks import cancel_and_wait
from storage.errors import ForeignKeyViolation, StorageError
from storage.events import EventStore

log = logging.getLogger(__name__)


class EventWriter:
    """Single-task batched writer. Every method runs on the asyncio loop."""

    def __init__(self, store: EventStore, broker: Broker, *, max_batch: int = 2000) -> None:
        self._store = store
        self._broker = broker
        self._max_batch = max_batch
        self._pending: list[RunEvent] = []
        self._wake = asyncio.Event()
        self._submitted = 0  # events accepted so far
        self._persisted = 0  # events written so far (a prefix of the submitted ones)
        self._last_of_run: dict[uuid.UUID, int] = {}  # run -> position of its last pending event
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None

    def submit(self, events: list[RunEvent]) -> None:
        """Queue events for writing (in the order given)."""
        self._pending.extend(events)
        for event in events:
            self._submitted += 1
            self._last_of_run[event.run_id] = self._submitted
        self._wake.set()

    async def flush(self, run_id: uuid.UUID | None = None) -> None:
        """Return once every event submitted before this call is persisted and published
        (only the events of ``run_id`` when given: other runs' batches are not waited for)."""
        target = self._submitted if run_id is None else self._last_of_run.get(run_id, 0)
        if self._persisted >= target:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((target, future))
        await future

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="event-writer")

    async def stop(self) -> None:
        """Write what is pending, then stop."""
        if self._task is None:
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.flush(), 10.0)
        await cancel_and_wait(self._task)
        self._task = None

    async def _run(self) -> None:
        delay = 0.05
        while True:
            if not self._pending:
                self._wake.clear()
                await self._wake.wait()
            batch = self._pending[: self._max_batch]
            try:
                await self._store.insert_batch([e.row for e in batch])
            except ForeignKeyViolation:
                # The run was deleted (its app or tenant went away): nothing to keep.
                log.warning("dropping %d events of deleted runs", len(batch))
            except StorageError:
                log.exception("writing %d events failed; retrying in %.2f s", len(batch), delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            delay = 0.05
            del self._pending[: len(batch)]
            self._persisted += len(batch)
            for event in batch:
                if self._last_of_run.get(event.run_id, 0) <= self._persisted:
                    self._last_of_run.pop(event.run_id, None)
            self._broker.publish(batch)
            self._release_waiters()

    def _release_waiters(self) -> None:
        still: list[tuple[int, asyncio.Future[None]]] = []
        for target, future in self._waiters:
            if target <= self._persisted:
                if not future.done():
                    future.set_result(None)
            else:
                still.append((target, future))
        self._waiters = still
