"""Minimal HTTP/1.1 wire helpers for the scripted servers on loopback (tests only).

Request side: :class:`RequestInput` (buffered, so a disconnect watcher loses no bytes).
Response side: status lines, chunked transfer coding, JSON responses. Disconnects surface as
:class:`ClientGone`.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

MAX_HEADER_BYTES = 64 * 1024
_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    413: "Payload Too Large",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class ClientGone(Exception):
    """The client closed the connection before the response was complete."""


def status_line(status: int) -> str:
    """``HTTP/1.1 <status> <reason>\\r\\n``."""
    return f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}\r\n"


def chunked(data: bytes) -> bytes:
    """``data`` as one chunk of the chunked transfer coding (RFC 9112 section 7.1)."""
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


async def send_json(
    writer: asyncio.StreamWriter, status: int, payload: Any, keep_alive: bool
) -> None:
    """Write a complete JSON response with ``Content-Length``."""
    data = json.dumps(payload).encode()
    head = status_line(status) + (
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
        f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n"
    )
    writer.write(head.encode("latin-1") + data)
    await writer.drain()


class RequestInput:
    """The request side of one connection, buffered so the disconnect watcher loses no
    bytes a client sends early (e.g. its next keep-alive request)."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader
        self._buf = bytearray()

    async def _fill(self) -> None:
        data = await self._reader.read(65536)
        if not data:
            raise asyncio.IncompleteReadError(bytes(self._buf), None)
        self._buf += data

    async def readuntil(self, sep: bytes, limit: int) -> bytes:
        while (end := self._buf.find(sep)) < 0:
            if len(self._buf) > limit:
                raise asyncio.LimitOverrunError("header too large", len(self._buf))
            await self._fill()
        out = bytes(self._buf[: end + len(sep)])
        del self._buf[: end + len(sep)]
        return out

    async def readexactly(self, n: int) -> bytes:
        while len(self._buf) < n:
            await self._fill()
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    async def watch_eof(self) -> None:
        """Return when the client closes its side; keep whatever it sends meanwhile."""
        while True:
            try:
                data = await self._reader.read(65536)
            except ConnectionError:
                return
            if not data:
                return
            self._buf += data

    async def read_body(self, headers: dict[str, str]) -> bytes:
        """The request body, by ``Content-Length`` or chunked transfer coding."""
        if "chunked" in headers.get("transfer-encoding", "").lower():
            parts = []
            while True:
                size_line = await self.readuntil(b"\r\n", MAX_HEADER_BYTES)
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while (await self.readuntil(b"\r\n", MAX_HEADER_BYTES)) != b"\r\n":
                        pass  # trailers, up to the blank line
                    return b"".join(parts)
                parts.append(await self.readexactly(size))
                await self.readexactly(2)
        length = int(headers.get("content-length", "0") or 0)
        return await self.readexactly(length) if length else b""


async def wait_or_gone(watcher: asyncio.Task[None], seconds: float | None) -> None:
    """Sleep ``seconds`` (forever when None) unless the client disconnects first.

    Raises:
        ClientGone: the client closed the connection.
    """
    done, _ = await asyncio.wait({watcher}, timeout=seconds)
    if done:
        raise ClientGone()


async def drain(writer: asyncio.StreamWriter, watcher: asyncio.Task[None]) -> None:
    if watcher.done() or writer.is_closing():
        raise ClientGone()
    try:
        await writer.drain()
    except ConnectionError as exc:
        raise ClientGone() from exc
