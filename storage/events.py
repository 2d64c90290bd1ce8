"""Repository for the run event log (``run_events``), docs/design.md section 4.

Batches are written with one ``unnest`` INSERT plus one counter UPDATE, as a single
statement (measured ~150k rows/s against ~7k/s for one INSERT per event); the events of a
status write are counted by its status statement and only inserted.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from storage.database import Database


class EventRow(NamedTuple):
    """One stored event: payload and diagnostics are the stored JSON text."""

    run_id: uuid.UUID
    seq: int
    type: str
    stage: str
    payload: str
    diagnostics: str
    ts: datetime


class EventStore:
    """Queries on ``run_events``.

    Args:
        db: the database (or a transaction's).
        origin: the writing node's id, sent with every ``rw_events`` announcement of an
            insert (``<run_id>:<seq>:<origin>``, :mod:`runtime.cluster.channels`) so that
            node's event feed can ignore its own writes (it publishes them itself); ``""``
            (no node: tests, tools) is heard by every node.
    """

    def __init__(self, db: Database, origin: str = "") -> None:
        self.db = db
        self.origin = origin

    async def insert_batch(self, rows: Sequence[EventRow]) -> None:
        """Insert events (any runs, any order) and advance each run's ``last_event_seq``:
        :meth:`insert_fenced` with no claim token (the one batch statement). Events of a run
        that does not exist are not stored.

        Raises:
            storage.errors.StorageError: the batch was not written (nothing of it was).
        """
        await self.insert_fenced(rows, [None] * len(rows))

    async def append_counted(self, rows: Sequence[EventRow]) -> None:
        """Insert the events of a status write, in its transaction, after the status
        statement that already counted them in the run's ``last_event_seq`` (and holds the
        run's row), and announce them: the row is not updated a second time
        (:meth:`storage.runs.RunStore.finish` and the other status writes).

        Raises:
            storage.errors.StorageError: the events were not written.
        """
        if not rows:
            return
        cols = [list(c) for c in zip(*rows, strict=True)]
        await self.db.execute("events_append_counted", *cols, self.origin)

    async def insert_fenced(
        self, rows: Sequence[EventRow], tokens: Sequence[int | None]
    ) -> set[uuid.UUID]:
        """Insert events of run executors, each under its writer's claim token (``tokens``,
        one per row; None: unfenced), and advance each run's ``last_event_seq``; the events
        of a run whose claim token moved on (another node took it, docs/design.md 9) are not
        stored.

        Returns:
            The runs whose events were refused.

        Raises:
            storage.errors.StorageError: the batch was not written (nothing of it was).
            storage.errors.ForeignKeyViolation: never for a deleted run (its events are
                simply not stored, and it is not reported as refused).
        """
        if not rows:
            return set()
        cols = [list(c) for c in zip(*rows, strict=True)]
        records = await self.db.fetch("events_write_fenced", *cols, list(tokens), self.origin)
        return {r["run_id"] for r in records}

    async def read_from(self, run_id: uuid.UUID, seq: int, limit: int = 1000) -> list[EventRow]:
        """Events with ``seq >= seq``, in order, at most ``limit``."""
        records: list[Any] = await self.db.fetch("events_from", run_id, seq, limit)
        return [
            EventRow(run_id, r["seq"], r["type"], r["stage"], r["payload"], r["diagnostics"],
                     r["ts"])
            for r in records
        ]  # fmt: skip

    async def last_seqs(self, run_ids: Sequence[uuid.UUID]) -> list[tuple[uuid.UUID, int]]:
        """``(run_id, highest stored seq)`` of each existing run of ``run_ids``."""
        records: list[Any] = await self.db.fetch("events_last_seqs", list(run_ids))
        return [(r["id"], int(r["last_event_seq"] or 0)) for r in records]

    async def last_seq(self, run_id: uuid.UUID) -> int:
        """The highest persisted seq of the run (0 when it has none)."""
        value = await self.db.fetchval("events_last_seq", run_id)
        return int(value or 0)
