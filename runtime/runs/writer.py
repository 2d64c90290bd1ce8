"""The batched event writer: persist, then publish (docs/design.md section 4).

Actors hand numbered events to :meth:`EventWriter.submit` (through the loop port). One task
drains everything submitted so far into a single ``unnest`` INSERT, and only after the
commit publishes the batch to the broker, which is what makes subscribe-then-backlog
gap-free.

Failure rules (issue 10, part 2 item 1):

- Events submitted are never dropped. A write that fails with any storage error (the
  connection dropped, Postgres restarting: storage translates every driver error) is
  retried, the same batch, with back-off from 0.05 s doubling to 5 s, until it succeeds.
  The insert ignores rows already stored, so a retry after a write whose commit was not
  acknowledged is harmless.
- A write Postgres refuses for its data (``storage.errors.StatementRefused``: a value it
  cannot convert, a constraint; storage classifies the driver's errors) fails the same way
  every time, so it is not retried: the batch is split in halves, again and again, until
  the refused events are alone; the others are written, and each refused one is stored in
  its place as the marker of :func:`runtime.runs.events.unstorable` (same seq and type,
  payload ``{"unstorable": true, "reason": ...}``, an ``EVENT_UNSTORABLE`` diagnostic),
  logged at ERROR. The run goes on and its seqs stay contiguous. A marker that is refused
  too (nothing in it comes from the run) is dropped with a second ERROR. A batch that
  succeeds does no extra work.
- Only the events of a run that no longer exists (its app or tenant was deleted, a foreign
  key violation) are discarded: the batch is then written run by run so no other run loses
  anything.
- The writing task is supervised: if it dies of anything unexpected it is logged and
  started again after the same back-off (the pending events are still there).
- Memory is bounded by back-pressure, not by discarding: past ``max_pending`` unwritten
  events :attr:`EventWriter.over_limit` is set and :meth:`EventWriter.wait_for_room`
  blocks the engine pumps (the producers of volume) until the backlog is under the limit.
- :meth:`EventWriter.unhealthy_reason` says why the writer is not keeping up (retrying,
  restarting); readiness shows it.

Fencing (docs/design.md 9): each event carries the claim token of the actor that made it, and
the batch statement stores a run's events only while the run still holds that token. The
events of a run another node took over are refused in that same statement, not published,
and reported once per batch to ``on_fenced(run_id, token)``, so the stalled old owner
stops its engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable

from runtime.metrics import Metrics
from runtime.runs.broker import Broker
from runtime.runs.events import RunEvent, unstorable
from runtime.tasks import cancel_and_wait
from storage.errors import ForeignKeyViolation, StatementRefused, StorageError
from storage.events import EventStore

log = logging.getLogger(__name__)

RETRY_FIRST_SECONDS = 0.05
RETRY_MAX_SECONDS = 5.0


class EventWriter:
    """Single-task batched writer. Every method runs on the asyncio loop.

    Args:
        store: the event repository.
        broker: where persisted events are published.
        max_batch: events per INSERT.
        max_pending: unwritten events beyond which producers are held back
            (``RUNWRIGHT_EVENT_WRITER_MAX_PENDING``).
        metrics: gets each written batch's size and lag
            (:meth:`runtime.metrics.Metrics.events_written`) and reads the number of
            pending events when scraped.
        on_fenced: called on the loop with ``(run_id, token)`` when a run's events under
            claim token ``token`` were refused (another node holds the run).
    """

    def __init__(
        self,
        store: EventStore,
        broker: Broker,
        *,
        max_batch: int = 2000,
        max_pending: int = 100_000,
        metrics: Metrics | None = None,
        on_fenced: Callable[[uuid.UUID, int], None] | None = None,
    ) -> None:
        self.on_fenced = on_fenced
        self._metrics = metrics or Metrics()
        self._metrics.watch(self._metrics.writer_pending, lambda: len(self._pending))
        self._store = store
        self._broker = broker
        self._max_batch = max_batch
        self._max_pending = max_pending
        self._room = asyncio.Event()
        self._room.set()
        self._trouble: str | None = None  # why the writer is not keeping up, or None
        self._pending: list[RunEvent] = []
        self._wake = asyncio.Event()
        self._submitted = 0  # events accepted so far
        self._persisted = 0  # events written so far (a prefix of the submitted ones)
        self._last_of_run: dict[uuid.UUID, int] = {}  # run -> position of its last pending event
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None

    def submit(self, events: list[RunEvent]) -> None:
        """Queue events for writing (in the order given). Always accepted: the bound is
        kept by :meth:`wait_for_room`, never by refusing or dropping events."""
        self._pending.extend(events)
        for event in events:
            self._submitted += 1
            self._last_of_run[event.run_id] = self._submitted
        if len(self._pending) >= self._max_pending:
            self._room.clear()
        self._wake.set()

    @property
    def over_limit(self) -> bool:
        """More than ``max_pending`` events wait to be written (producers should wait)."""
        return not self._room.is_set()

    @property
    def pending(self) -> int:
        """Events submitted and not yet written."""
        return len(self._pending)

    async def wait_for_room(self) -> None:
        """Return once the unwritten backlog is under ``max_pending`` (at once when it is).
        The engine pumps await this before handing on each batch: back-pressure."""
        if not self._room.is_set():
            await self._room.wait()

    def unhealthy_reason(self) -> str | None:
        """None while writes succeed; else why not (a readiness check)."""
        if self._task is None:
            return "not running"
        return self._trouble

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
        """Start the supervised writing task."""
        self._task = asyncio.create_task(self._supervise(), name="event-writer")

    async def stop(self) -> None:
        """Write what is pending, then stop."""
        if self._task is None:
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.flush(), 10.0)
        await cancel_and_wait(self._task)
        self._task = None

    async def _supervise(self) -> None:
        """Run :meth:`_run`; if it dies, log it, mark the writer unhealthy and start it
        again after a back-off. Only cancellation (``stop``) ends this task."""
        delay = RETRY_FIRST_SECONDS
        while True:
            try:
                await self._run()
            except Exception:
                self._trouble = "restarting after a crash"
                log.exception("the event writer crashed; restarting it in %.2f s", delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_SECONDS)

    async def _run(self) -> None:
        delay = RETRY_FIRST_SECONDS
        while True:
            if not self._pending:
                self._trouble = None  # nothing waits to be written: healthy (also after a crash)
                self._wake.clear()
                await self._wake.wait()
            batch = self._pending[: self._max_batch]
            try:
                written = await self._write(batch)
            except StorageError as exc:
                self._trouble = "retrying failed writes"
                log.warning("writing %d events failed (%s); retrying in %.2f s",
                            len(batch), exc, delay)  # fmt: skip
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_SECONDS)
                continue
            if self._trouble is not None:
                log.info("the event writer is writing again")
            self._trouble = None
            delay = RETRY_FIRST_SECONDS
            del self._pending[: len(batch)]
            self._persisted += len(batch)
            for event in batch:
                if self._last_of_run.get(event.run_id, 0) <= self._persisted:
                    self._last_of_run.pop(event.run_id, None)
            if len(self._pending) < self._max_pending:
                self._room.set()
            self._metrics.events_written(len(batch), batch[0].row.ts)
            self._broker.publish(written)
            self._release_waiters()

    async def _write(self, batch: list[RunEvent]) -> list[RunEvent]:
        """Insert ``batch``; return the events that were stored.

        Raises:
            StorageError: the write may pass another time (retry the batch: what of it was
                written is not written twice).
        """
        try:
            refused = await self._store.insert_fenced(
                [e.row for e in batch], [e.fence for e in batch]
            )
        except ForeignKeyViolation:
            pass
        except StatementRefused as exc:
            return await self._isolate(batch, exc)
        else:
            if not refused:
                return batch
            self._refused(batch, refused)
            return [e for e in batch if e.run_id not in refused]
        # Some run of the batch was deleted (its app or tenant went away): write run by
        # run, so only the deleted runs' events are discarded.
        by_run: dict[uuid.UUID, list[RunEvent]] = {}
        for event in batch:
            by_run.setdefault(event.run_id, []).append(event)
        written: list[RunEvent] = []
        for run_id, events in by_run.items():
            try:
                refused = await self._store.insert_fenced(
                    [e.row for e in events], [e.fence for e in events]
                )
            except ForeignKeyViolation:
                log.warning("dropping %d events of deleted run %s", len(events), run_id)
                continue
            except StatementRefused as exc:
                written.extend(await self._isolate(events, exc))
                continue
            if refused:
                self._refused(events, refused)
                continue
            written.extend(events)
        return written

    async def _isolate(self, batch: list[RunEvent], exc: StatementRefused) -> list[RunEvent]:
        """``batch`` was refused as a whole for its data (``exc``): write its halves apart,
        down to single events; a single refused event is stored as its marker.

        Returns:
            The events stored (markers in place of the refused ones).

        Raises:
            StorageError: a write that may pass another time failed (the batch is retried).
        """
        if len(batch) > 1:
            middle = len(batch) // 2
            return [*await self._write(batch[:middle]), *await self._write(batch[middle:])]
        event = batch[0]
        log.error("run %s: event %d (%s) was refused by the database (%s); it is stored as "
                  "an unstorable marker", event.run_id, event.seq, event.type, exc)  # fmt: skip
        marker = unstorable(event, exc.reason)
        try:
            refused = await self._store.insert_fenced([marker.row], [marker.fence])
        except StatementRefused as again:
            log.error("run %s: the marker of event %d was refused too (%s); the event is "
                      "dropped", event.run_id, event.seq, again)  # fmt: skip
            return []
        if refused:
            self._refused([marker], refused)
            return []
        return [marker]

    def _refused(self, batch: list[RunEvent], refused: set[uuid.UUID]) -> None:
        """Report each fenced run once, with the token its refused events carried."""
        tokens = {e.run_id: e.fence for e in batch if e.run_id in refused}
        for run_id, token in tokens.items():
            log.warning("events of run %s refused: another node holds it (claim token %s "
                        "is stale)", run_id, token)  # fmt: skip
            if self.on_fenced is not None and token is not None:
                self.on_fenced(run_id, token)

    def _release_waiters(self) -> None:
        still: list[tuple[int, asyncio.Future[None]]] = []
        for target, future in self._waiters:
            if target <= self._persisted:
                if not future.done():
                    future.set_result(None)
            else:
                still.append((target, future))
        self._waiters = still
