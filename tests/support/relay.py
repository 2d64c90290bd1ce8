"""A TCP relay on loopback between a client and a server, for fault tests: it forwards
bytes both ways and can cut every open connection at once, or cut a connection right after
forwarding its request (the answer is lost, the server did the work). Real sockets; it
knows nothing of HTTP beyond recording what each connection sent first."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from runtime.processes import free_port


class Relay:
    """Listens on ``port`` and forwards each connection to ``127.0.0.1:target_port``.

    Attributes:
        requests: the first bytes each accepted connection sent (one entry per connection).
        lose_answers: how many of the next connections get their answer cut off: their
            request reaches the server, then both sides are closed before any byte of the
            answer is forwarded.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.requests: list[bytes] = []
        self.lose_answers = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cut_all(self) -> None:
        """Abort every open connection (both sides see the TCP connection reset)."""
        for writer in list(self._writers):
            writer.transport.abort()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        lose = self.lose_answers > 0
        if lose:
            self.lose_answers -= 1
        index = len(self.requests)
        self.requests.append(b"")
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            self._tasks.discard(task)
            return
        self._writers |= {writer, up_writer}

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, up: bool) -> None:
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                while data := await src.read(65536):
                    if up:
                        self.requests[index] += data
                    elif lose:
                        return  # the first answer byte: drop it and close both sides
                    dst.write(data)
                    await dst.drain()

        try:
            forward = asyncio.ensure_future(pump(reader, up_writer, True))
            backward = asyncio.ensure_future(pump(up_reader, writer, False))
            await asyncio.wait([forward, backward], return_when=asyncio.FIRST_COMPLETED)
            for pending in (forward, backward):
                pending.cancel()
            await asyncio.gather(forward, backward, return_exceptions=True)
        finally:
            for w in (writer, up_writer):
                self._writers.discard(w)
                w.transport.abort()
            self._tasks.discard(task)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Relay]:
        """Listen until the block ends; then close the listener and every connection."""
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        try:
            yield self
        finally:
            self._server.close()
            self.cut_all()  # every handler then ends by itself (cancelling one is logged)
            if self._tasks:
                await asyncio.wait(list(self._tasks), timeout=30)
            await self._server.wait_closed()
