"""The event feed: wakes this node's streams for events any node stored (docs/design.md
section 9: any node serves any stream).

Every event batch insert announces ``<run_id>:<seq>:<origin>`` on ``rw_events`` in its own
transaction (``storage/queries/events.sql``), so the announcement arrives only after the
events are committed. :meth:`EventFeed.on_events` (a listener subscriber) pokes the run's
subscribers with that seq; each stream then reads the stored events after its own cursor
and drops duplicates by seq (``web/sse.py``).

Announcements whose origin is this node are ignored: every insert this node makes (the
event writer's batches, a run actor's status write with its events) publishes the events
to this node's broker itself once committed, so its streams have them already, or will
have them a moment later (the announcement often arrives before the writer's own
publish: poking then made every local stream read ``run_events`` for events on their way,
several reads per run, the largest cost of a scripted run in the issue 10 profile).

A notification can be lost (the listener was reconnecting). On every ``None`` from the
listener (each poll tick and each reconnect) the feed reads the highest stored seq of every
run with a subscriber here, in one query, and pokes them with it: a lost notification
delays events by at most one poll interval, never loses them.
"""

from __future__ import annotations

import asyncio
import logging

from runtime.cluster import channels
from runtime.runs.broker import Broker
from runtime.tasks import Supervised
from storage.errors import StorageError
from storage.events import EventStore

log = logging.getLogger(__name__)


class EventFeed:
    """Turns ``rw_events`` notifications (and the slow poll) into broker pokes.

    Args:
        broker: this node's broker (its subscriptions are the streams to wake).
        store: reads the highest stored seq of runs for the poll.
        node_id: this node's id: announcements with this origin are its own writes.
    """

    def __init__(self, broker: Broker, store: EventStore, node_id: str = "") -> None:
        self._broker = broker
        self._store = store
        self._node_id = node_id
        self._poll_due = asyncio.Event()
        self.task = Supervised("event-feed", self._run)

    def on_events(self, payload: str | None) -> None:
        """Listener subscriber of ``rw_events`` (runs on the loop, never blocks)."""
        if payload is None:
            if self._broker.subscribed_runs():
                self._poll_due.set()
            return
        parsed = channels.parse_events(payload)
        if parsed is None:
            log.warning("ignoring a malformed %s payload %r", channels.EVENTS, payload[:100])
            return
        run_id, seq, origin = parsed
        if origin and origin == self._node_id:
            return  # written here: the writer publishes it to this node's streams
        self._broker.poke(run_id, seq)

    async def start(self) -> None:
        """Start the poll task."""
        await self.task.start()

    async def stop(self) -> None:
        """Stop the poll task."""
        await self.task.stop()

    async def _run(self) -> None:
        self.task.healthy()
        while True:
            await self._poll_due.wait()
            self._poll_due.clear()
            runs = self._broker.subscribed_runs()
            if not runs:
                continue
            try:
                stored = await self._store.last_seqs(runs)
            except StorageError as exc:  # the next tick tries again
                log.warning("event feed poll failed: %s", exc)
                continue
            for run_id, seq in stored:
                self._broker.poke(run_id, seq)
