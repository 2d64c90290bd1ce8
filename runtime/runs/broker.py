"""Live event fan-out: one bounded queue per SSE subscriber (docs/design.md section 4).

Runs on the asyncio loop only. The event writer publishes each batch *after* it is
persisted, so a subscriber that registers first and then reads the stored backlog sees
every event: either in the backlog or live (duplicates are dropped by seq by the reader).

Events of a run executing on another node are not published here: that node's insert
announces them on ``rw_events`` and the event feed (:mod:`runtime.runs.feed`) *pokes* the
run's subscribers with the stored seq (:meth:`Broker.poke`); each stream then reads the
stored events after its own cursor.
"""

from __future__ import annotations

import asyncio
import collections
import uuid
from collections.abc import Iterable

from runtime.runs.events import RunEvent
from runtime.tasks import cancel_and_wait


class Subscription:
    """A subscriber's bounded queue of events of one run.

    When the subscriber falls ``maxsize`` events behind it is closed as *overflowed*: its
    stream ends without a terminal event and the client resumes from its last id.
    """

    __slots__ = (
        "run_id", "_items", "_maxsize", "_wake", "overflowed", "_active", "_ping", "_stored",
    )  # fmt: skip

    def close(self) -> None:
        """End the subscription like an overflow: the stream closes without a terminal
        event and the client resumes from its last id (a reconnectable close)."""
        self.overflowed = True
        self._items.clear()
        self._wake.set()

    def __init__(self, run_id: uuid.UUID, maxsize: int) -> None:
        self.run_id = run_id
        self._items: collections.deque[RunEvent] = collections.deque()
        self._maxsize = maxsize
        self._wake = asyncio.Event()
        self.overflowed = False
        self._active = False  # something was delivered since the last keep-alive tick
        self._ping = False
        self._stored = 0  # the highest stored seq a poke announced (not yet taken)

    def push(self, events: Iterable[RunEvent]) -> None:
        if self.overflowed:
            return
        self._items.extend(events)
        if len(self._items) > self._maxsize:
            self.overflowed = True
            self._items.clear()
        self._wake.set()

    def poke(self, seq: int) -> None:
        """The run has stored events up to ``seq`` (maybe written by another node): wake
        the reader, which reads the ones after its cursor (:meth:`take_stored`)."""
        if seq > self._stored:
            self._stored = seq
            self._wake.set()

    def take_stored(self) -> int:
        """The highest stored seq poked since the last call (0: none); resets it."""
        seq, self._stored = self._stored, 0
        return seq

    def has_after(self, seq: int) -> bool:
        """True when an event newer than ``seq`` is already queued."""
        return any(event.seq > seq for event in self._items)

    def tick(self) -> None:
        """Keep-alive tick: ask for a comment if nothing was sent since the last tick."""
        if not self._active:
            self._ping = True
            self._wake.set()
        self._active = False

    async def next_batch(self, after: int = 0) -> list[RunEvent] | None:
        """Wait for events; return all queued ones (batch drain), ``[]`` for a keep-alive
        or for a poke beyond ``after`` (the reader's cursor: see :meth:`take_stored`), or
        None when the subscription overflowed."""
        while (not self._items and not self._ping and not self.overflowed
               and self._stored <= after):  # fmt: skip
            self._wake.clear()
            await self._wake.wait()
        if self.overflowed:
            return None
        self._active = True
        self._ping = False
        batch = list(self._items)
        self._items.clear()
        return batch


class Broker:
    """Registry of subscriptions by run; publishes batches to them."""

    def __init__(self, *, queue_max: int, keepalive_seconds: float) -> None:
        self._subs: dict[uuid.UUID, set[Subscription]] = {}
        self._queue_max = queue_max
        self._keepalive = keepalive_seconds
        self._ticker: asyncio.Task[None] | None = None
        self._closed = False

    def subscribe(self, run_id: uuid.UUID) -> Subscription:
        """A new subscription (already closed once :meth:`close_all` ran: its stream
        replays the stored events and ends, reconnectable)."""
        sub = Subscription(run_id, self._queue_max)
        self._subs.setdefault(run_id, set()).add(sub)
        if self._closed:
            sub.close()
        return sub

    def close_all(self) -> None:
        """Shutdown: close every subscription, now and later (each stream ends without a
        terminal event; its client reconnects by id to another process or the next
        start)."""
        self._closed = True
        for subs in list(self._subs.values()):
            for sub in list(subs):
                sub.close()

    def unsubscribe(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.run_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.run_id]

    def publish(self, events: list[RunEvent]) -> None:
        """Deliver persisted events (any runs, in seq order per run) to their subscribers."""
        if not self._subs:
            return
        by_run: dict[uuid.UUID, list[RunEvent]] = {}
        for event in events:
            if event.run_id in self._subs:
                by_run.setdefault(event.run_id, []).append(event)
        for run_id, batch in by_run.items():
            for sub in self._subs.get(run_id, ()):
                sub.push(batch)

    def poke(self, run_id: uuid.UUID, seq: int) -> None:
        """Tell the run's subscribers it has stored events up to ``seq``
        (:meth:`Subscription.poke`)."""
        for sub in self._subs.get(run_id, ()):
            sub.poke(seq)

    def subscribed_runs(self) -> list[uuid.UUID]:
        """The runs with at least one subscriber."""
        return list(self._subs)

    def subscriber_count(self, run_id: uuid.UUID) -> int:
        return len(self._subs.get(run_id, ()))

    def subscriber_total(self) -> int:
        """Open subscriptions over all runs (read when metrics are scraped)."""
        return sum(len(subs) for subs in list(self._subs.values()))

    async def start(self) -> None:
        """Start the one keep-alive ticker (cheaper than a timer per stream)."""
        self._ticker = asyncio.create_task(self._tick_forever(), name="sse-keepalive")

    async def stop(self) -> None:
        await cancel_and_wait(self._ticker)

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(self._keepalive)
            for subs in list(self._subs.values()):
                for sub in list(subs):
                    sub.tick()
