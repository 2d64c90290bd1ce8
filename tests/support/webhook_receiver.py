"""A webhook receiver on loopback: a real HTTP/1.1 server over asyncio sockets that answers
each request as its script says and records what it got (headers, body).

Script items, one per request (then ``"200"`` for the rest): ``"200"``, ``"500"`` (a status
with a short body), ``"302"`` (a redirect to ``/redirected`` here), ``"drop"`` (read the
request, close without answering), ``"hang"`` (read the request, never answer until the
server stops).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Received:
    """One request as received: lower-case header names, the raw body."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class WebhookReceiver:
    """See the module docstring. ``requests`` lists every request received, in order."""

    def __init__(self, script: Sequence[str]) -> None:
        self.script = list(script)
        self.requests: list[Received] = []
        self.accepted = 0
        self.port = 0
        self._arrived = asyncio.Condition()
        self._stop = asyncio.Event()

    def url(self, host: str = "127.0.0.1", path: str = "/hook") -> str:
        return f"http://{host}:{self.port}{path}"

    async def wait_for(self, count: int, within: float = 60.0) -> list[Received]:
        """Return once ``count`` requests arrived (AssertionError after ``within`` s)."""
        async with self._arrived:
            try:
                await asyncio.wait_for(
                    self._arrived.wait_for(lambda: len(self.requests) >= count), within
                )
            except TimeoutError:
                raise AssertionError(
                    f"{len(self.requests)} webhook requests arrived, wanted {count}"
                ) from None
        return list(self.requests)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            action = self.script.pop(0) if self.script else "200"
            async with self._arrived:
                self.requests.append(Received(method, path, headers, body))
                self._arrived.notify_all()
            if action == "drop":
                return
            if action == "hang":
                await self._stop.wait()
                return
            text = b"accepted" if action == "200" else b"receiver broke\x00\n down"
            # A redirect points back here (a followed redirect would show as a request).
            location = f"Location: {self.url(path='/redirected')}\r\n" if action == "302" else ""
            writer.write(
                f"HTTP/1.1 {action} X\r\nContent-Length: {len(text)}\r\n{location}"
                "Connection: close\r\n\r\n".encode()
                + text
            )
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


@contextlib.asynccontextmanager
async def webhook_receiver(script: Sequence[str] = ()) -> AsyncIterator[WebhookReceiver]:
    """Start a :class:`WebhookReceiver` on ``127.0.0.1`` for the block; stopped after."""
    receiver = WebhookReceiver(script)
    server = await asyncio.start_server(receiver._serve, "127.0.0.1", 0)
    receiver.port = int(server.sockets[0].getsockname()[1])
    try:
        yield receiver
    finally:
        receiver._stop.set()
        server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 10)


def expected_signature(secret: str, timestamp: str, body: bytes) -> str:
    """What README "Webhooks" tells a receiver to compute: HMAC-SHA256 over
    ``<t>.<body>`` keyed with the secret, hex (written out here, not imported from the
    server, so a test compares the server against the documented scheme)."""
    message = timestamp.encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_parts(header: str) -> tuple[str, list[str]]:
    """``(t, [v1, ...])`` of a ``Runwright-Signature`` value."""
    t = ""
    v1: list[str] = []
    for part in header.split(","):
        key, _, value = part.partition("=")
        if key == "t":
            t = value
        elif key == "v1":
            v1.append(value)
    return t, v1
