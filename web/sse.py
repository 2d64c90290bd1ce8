"""Server-sent events: the one place for framing, replay and resume (docs/design.md section 4).

Wire format (contract 3.1 plus ids): a prelude comment of 2048 spaces (defeats proxy
buffering), then per event ``id: <seq>`` + ``data: <envelope>`` + a blank line, and a
``: keep-alive`` comment when the stream is idle. A reconnecting client sends
``Last-Event-ID`` (or ``?after=<seq>``) and gets exactly the events after that seq.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable

from runtime.runs.broker import Broker, Subscription
from runtime.runs.events import TERMINAL_TYPES, RunEvent, from_row
from storage.errors import DatabaseUnavailable
from storage.events import EventStore

log = logging.getLogger(__name__)

PRELUDE = b": " + b" " * 2048 + b"\n\n"
KEEPALIVE = b": keep-alive\n\n"
PAGE = 1000

HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    "Connection": "keep-alive",
    "X-Accel-Buffering": "no",
}


def frame(event: RunEvent) -> bytes:
    """One SSE message for an event."""
    return f"id: {event.seq}\ndata: {event.envelope}\n\n".encode()


async def stream_run(
    broker: Broker,
    events: EventStore,
    run_id: uuid.UUID,
    app_id: uuid.UUID,
    after: int,
    is_active: Callable[[], Awaitable[bool]],
) -> AsyncIterator[bytes]:
    """Yield a run's events after seq ``after``, live, until a terminal event.

    Registers for live events first, then replays the stored backlog, then drops live
    duplicates by seq, so nothing is lost or repeated whatever the timing. Ends after a
    terminal event (``run.completed`` also ends a paused run's stream, contract 3.3), or
    without one when this subscriber fell too far behind (the client resumes by id).
    When the log ends with a terminal event, ``is_active()`` (the run is queued or running
    again: it was resumed) decides whether to wait for more. Never drives or stops the run.
    When the database becomes unreachable mid-stream the stream ends without a terminal
    event (a reconnectable close: the client resumes by id once it is back).
    """
    sub = broker.subscribe(run_id)
    try:
        yield PRELUDE
        # aclosing: a client that disconnects closes the inner generator too, at once.
        async with contextlib.aclosing(
            _events(sub, events, run_id, app_id, after, is_active)
        ) as chunks:
            async for chunk in chunks:
                yield chunk
    except DatabaseUnavailable as exc:
        log.warning("stream of run %s closed: database unavailable (%s)", run_id, exc)
    finally:
        broker.unsubscribe(sub)


async def _events(
    sub: Subscription,
    events: EventStore,
    run_id: uuid.UUID,
    app_id: uuid.UUID,
    after: int,
    is_active: Callable[[], Awaitable[bool]],
) -> AsyncGenerator[bytes, None]:
    """The body of :func:`stream_run` after the prelude: backlog, then live events."""
    last_type = None
    start = after if after > 0 else 1
    while True:
        rows = await events.read_from(run_id, start, PAGE)
        out: list[bytes] = []
        for row in rows:
            last_type = row.type
            if row.seq <= after:  # the client's cursor: only its type matters
                continue
            out.append(frame(from_row(row, app_id)))
            after = row.seq
        if out:
            yield b"".join(out)
        if len(rows) < PAGE:
            break
        start = after + 1
    # Ended: the log ends with a terminal event, or the cursor lies beyond the whole log
    # (no row at or after it), and the run is not running again. Without the second case
    # a cursor past a finished run's end waited forever (found by schemathesis).
    ended = last_type in TERMINAL_TYPES or last_type is None
    if ended and not sub.has_after(after) and not await is_active():
        return
    while True:
        batch = await sub.next_batch(after)
        if batch is None:
            return
        out = []
        behind = False  # stored events after the cursor are not in the batch
        for event in batch:
            if event.seq <= after:
                continue
            if event.seq > after + 1:  # a gap (events another node wrote): read the log
                behind = True
                break
            out.append(frame(event))
            after = event.seq
            if event.terminal:
                yield b"".join(out)
                return
        if out:
            yield b"".join(out)
        if behind or sub.take_stored() > after:
            # Another node stored them (it announced them on rw_events, or the slow poll
            # found them): read the log after the cursor.
            async for chunk, cursor, terminal in _stored(events, run_id, app_id, after):
                after = cursor
                yield chunk
                if terminal:
                    return
        elif not batch:
            yield KEEPALIVE


async def _stored(
    events: EventStore, run_id: uuid.UUID, app_id: uuid.UUID, after: int
) -> AsyncIterator[tuple[bytes, int, bool]]:
    """The stored events after seq ``after``, page by page, up to and including a terminal
    event: ``(frames, new cursor, ended with a terminal event)``."""
    while True:
        rows = await events.read_from(run_id, after + 1, PAGE)
        out: list[bytes] = []
        for row in rows:
            out.append(frame(from_row(row, app_id)))
            after = row.seq
            if row.type in TERMINAL_TYPES:
                yield b"".join(out), after, True
                return
        if out:
            yield b"".join(out), after, False
        if len(rows) < PAGE:
            return
