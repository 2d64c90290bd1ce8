"""A raw TCP server on loopback that answers every connection with fixed bytes and counts
the connections it accepted: the "server an attacker controls" of the security tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class CannedServer:
    """Accepts connections on ``127.0.0.1:<port>``, reads the request head, writes
    ``response`` and closes. ``accepted`` counts connections (0 = nothing reached it)."""

    def __init__(self, response: bytes) -> None:
        self.response = response
        self.accepted = 0
        self.requests: list[bytes] = []
        self._server: asyncio.Server | None = None
        self.port = 0

    def url(self, host: str = "127.0.0.1") -> str:
        """``http://<host>:<port>/v1`` — a model ``base_url`` pointing here."""
        return f"http://{host}:{self.port}/v1"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            self.requests.append(head)
            writer.write(self.response)
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


@contextlib.asynccontextmanager
async def canned_server(response: bytes) -> AsyncIterator[CannedServer]:
    """Start a :class:`CannedServer` for the block; stopped afterwards."""
    server = CannedServer(response)
    server._server = await asyncio.start_server(server._serve, "127.0.0.1", 0)
    server.port = int(server._server.sockets[0].getsockname()[1])
    try:
        yield server
    finally:
        server._server.close()
        await server._server.wait_closed()


def http_response(status: int, body: bytes, content_type: str = "text/html") -> bytes:
    """A complete HTTP/1.1 response that closes the connection."""
    head = (
        f"HTTP/1.1 {status} Whatever\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body
