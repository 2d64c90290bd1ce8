"""What every fault test asserts about the runs it disturbed (issue 10, part 2 item 7).

After the fault, within a bound, each run is terminal (or running again); its event log
has ``seq`` 1, 2, 3, ... without a gap, exactly one terminal event (the last one), and
its assistant text is exactly what the model sent: nothing lost, nothing said twice.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterable
from typing import Any

import asyncpg

TERMINAL = {"run.completed", "run.failed"}
SETTLED = {"completed", "failed", "cancelled", "paused"}


async def wait_settled(
    dsn: str, run_ids: Iterable[str], *, within: float, statuses: set[str] = SETTLED
) -> dict[str, str]:
    """Poll the database (its own connections: the app's pool may be the thing under
    fault) until every run's status is in ``statuses``; returns run id -> status.

    Raises:
        AssertionError: some run did not get there within ``within`` seconds.
    """
    ids = [uuid.UUID(r) for r in run_ids]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    last: dict[str, str] = {}
    while True:
        try:
            conn = await asyncpg.connect(dsn, timeout=10)
            try:
                rows = await conn.fetch(
                    "SELECT id, status FROM agent_runs WHERE id = ANY($1::uuid[])", ids
                )
            finally:
                await conn.close()
            last = {str(r["id"]): r["status"] for r in rows}
            if len(last) == len(ids) and all(s in statuses for s in last.values()):
                return last
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            pass  # the database itself is down or restarting: keep waiting
        assert loop.time() < deadline, f"runs not settled within {within} s: {last}"
        await asyncio.sleep(0.1)


async def event_log(dsn: str, run_id: str) -> list[dict[str, Any]]:
    """The run's stored events, in seq order: ``{"seq", "type", "payload"}``."""
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        rows = await conn.fetch(
            "SELECT seq, type, payload::text AS payload FROM run_events "
            "WHERE run_id = $1 ORDER BY seq",
            uuid.UUID(run_id),
        )
    finally:
        await conn.close()
    return [{"seq": r["seq"], "type": r["type"], "payload": json.loads(r["payload"])}
            for r in rows]  # fmt: skip


async def final_log(dsn: str, run_id: str, *, within: float = 60.0) -> list[dict[str, Any]]:
    """The run's log once it holds a terminal event (the status row can be written a
    moment before the terminal event reaches the log); at most ``within`` seconds.

    Raises:
        AssertionError: no terminal event within ``within`` seconds.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        events = await event_log(dsn, run_id)
        if any(e["type"] in TERMINAL for e in events):
            return events
        assert loop.time() < deadline, f"run {run_id} has no terminal event: {events[-3:]}"
        await asyncio.sleep(0.05)


def assistant_text(events: list[dict[str, Any]]) -> str:
    """The concatenated ``assistant.delta`` contents."""
    return "".join(e["payload"]["content"] for e in events if e["type"] == "assistant.delta")


def assert_log_intact(events: list[dict[str, Any]], *, text: str | None = None) -> None:
    """seq contiguous from 1, exactly one terminal event and it is the last, and (when
    given) the assistant text equal to ``text``."""
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(1, len(seqs) + 1)), f"seq not contiguous from 1: {seqs}"
    terminals = [e["type"] for e in events if e["type"] in TERMINAL]
    assert len(terminals) == 1, f"terminal events: {terminals}"
    assert events[-1]["type"] in TERMINAL, f"last event is {events[-1]['type']}"
    if text is not None:
        assert assistant_text(events) == text
