"""What the asyncio client's streams do with their connections: a stream read to its
terminal event leaves its connection in the pool for the next call (one TCP connection
carries creates and streams alike), and a server that keeps the response open after the
terminal event does not hold the caller (the wait for the body's end is bounded)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator

from runwright.client import AsyncClient
from runwright.client._core import STREAM_DRAIN_SECONDS, STREAM_READ_TIMEOUT
from tests.client.conftest import Live
from tests.support.relay import Relay

DONE: list[dict] = [{"delta": "ok"}]


async def test_one_connection_carries_runs_and_their_streams(live: Live):
    async with AsyncClient(live.base_url, live.token) as direct:
        app = await direct.create_app("Conn", f"conn-{uuid.uuid4().hex[:10]}")
    async with Relay(live.port).running() as relay:
        async with AsyncClient(relay.base_url, live.token) as rw:
            for _ in range(3):
                run = await rw.create_run(app.id, "go", engine="scripted", script=DONE)
                events = [e async for e in rw.stream(app.id, run.run_id)]
                assert events[-1].event == "run.completed"
    # Every create and every stream went over the first connection: each stream was read
    # to the end of its response, so its connection went back to the pool.
    assert len(relay.requests) == 1
    assert relay.requests[0].count(b"/stream HTTP/1.1") == 3


@contextlib.asynccontextmanager
async def _open_ended_sse(run_id: uuid.UUID) -> AsyncIterator[str]:
    """A loopback HTTP server whose every answer is an SSE response carrying one terminal
    event and then never ending (no last chunk): what a misbehaving server or proxy might
    do. Yields its base URL."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            await reader.readuntil(b"\r\n\r\n")
            envelope = json.dumps({
                "event": "run.completed", "run_id": str(run_id), "seq": 1,
                "ts": "2026-01-01T00:00:00+00:00", "payload": {},
            })  # fmt: skip
            frame = f"id: 1\ndata: {envelope}\n\n".encode()
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                b"transfer-encoding: chunked\r\n\r\n"
                + f"{len(frame):x}\r\n".encode()
                + frame
                + b"\r\n"
            )
            await writer.drain()
            await reader.read()  # until the client closes the connection
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


async def test_a_stream_left_open_after_its_terminal_event_ends_in_bounded_time():
    run_id = uuid.uuid4()
    async with _open_ended_sse(run_id) as base, AsyncClient(base, "t") as rw:
        started = time.monotonic()
        events = [e async for e in rw.stream(uuid.uuid4(), run_id)]
        took = time.monotonic() - started
    assert [(e.seq, e.event) for e in events] == [(1, "run.completed")]
    # The stream ended after the drain's bound, not after the read timeout's.
    assert STREAM_DRAIN_SECONDS <= took < STREAM_READ_TIMEOUT / 4
