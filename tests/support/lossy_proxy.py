"""A loopback HTTP proxy that loses answers (tests only).

It forwards every request to an upstream server and relays the answer, except for the
requests a predicate picks: those it forwards too, waits for the upstream's answer, and
then answers 503 itself. That is what a client sees when a command went through but its
answer came too late (a run's actor that did not reply within the command timeout). One
request per connection; no streaming (the SSE stream is read from the server directly).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import httpx

from tests.support.http_wire import MAX_HEADER_BYTES, RequestInput, send_json, status_line

_HOP_HEADERS = frozenset(
    {"host", "connection", "content-length", "transfer-encoding", "keep-alive", "accept-encoding"}
)
LOST_DETAIL = "The run did not answer in time; try again"  # web/errors.py's RunUnresponsive


@dataclass
class LossyProxy:
    """A running proxy: its ``base_url``, and ``log`` of ``(method, path, answered)``
    where ``answered`` is the status the client got (503 for a lost answer)."""

    base_url: str
    log: list[tuple[str, str, int]] = field(default_factory=list)


@contextlib.asynccontextmanager
async def lossy_proxy(
    upstream: str, lose: Callable[[str, str, int], bool]
) -> AsyncIterator[LossyProxy]:
    """Serve a proxy to ``upstream`` on a free loopback port while the block runs.

    Args:
        upstream: the server's base URL.
        lose: ``(method, path, n)`` -> whether to answer that request 503 after the
            upstream handled it; ``n`` counts earlier requests with that method and path.
    """
    seen: dict[tuple[str, str], int] = {}
    async with httpx.AsyncClient(base_url=upstream, timeout=60.0) as http:

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                inp = RequestInput(reader)
                head = (await inp.readuntil(b"\r\n\r\n", MAX_HEADER_BYTES)).decode("latin-1")
                request_line, *lines = head.split("\r\n")
                method, target, _ = request_line.split(" ", 2)
                headers = {}
                for line in lines:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                body = await inp.read_body(headers)
                sent = {k: v for k, v in headers.items() if k not in _HOP_HEADERS}
                answer = await http.request(method, target, content=body, headers=sent)
                path = target.split("?", 1)[0]
                n = seen.get((method, path), 0)
                seen[(method, path)] = n + 1
                if lose(method, path, n):
                    proxy.log.append((method, path, 503))
                    await send_json(writer, 503, {"detail": LOST_DETAIL}, keep_alive=False)
                    return
                proxy.log.append((method, path, answer.status_code))
                content_type = answer.headers.get("content-type", "application/json")
                writer.write(
                    (
                        status_line(answer.status_code)
                        + f"Content-Type: {content_type}\r\n"
                        + f"Content-Length: {len(answer.content)}\r\nConnection: close\r\n\r\n"
                    ).encode("latin-1")
                    + answer.content
                )
                await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                pass  # the client went away
            finally:
                writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        proxy = LossyProxy(f"http://127.0.0.1:{port}")
        try:
            yield proxy
        finally:
            server.close()
            await server.wait_closed()
