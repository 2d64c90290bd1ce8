"""A loopback relay between OpenCode and a tenant's model endpoint (docs/security.md).

OpenCode connects to its providers by itself, so two rules of issue 9 could not hold for a
tenant's model there: the egress check at connect time (OpenCode would resolve the name
again) and the encrypted key (OpenCode would need it in its config, in plain text).
Instead, a tenant model's provider entry points at this relay,
``http://127.0.0.1:<port>/<token>``, with no key. The relay forwards each request to the
model's real ``base_url`` through :class:`runtime.egress.EgressTransport` (resolved,
checked and pinned at connect time), adds the key from memory, and streams the answer
back. A refused or failed connection answers 502 with the one sentence every connect
failure reads; an upstream error body goes back only as a short escaped excerpt.

Tokens are random, live only in this process's memory and are useless off loopback. The
relay accepts ``GET`` and ``POST`` below a known token, bodies up to
:data:`MAX_BODY_BYTES`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx2
from hypercorn.asyncio import serve
from hypercorn.config import Config

from runtime.egress import REFUSED_MESSAGE, EgressPolicy, EgressTransport
from runtime.engine import ModelTarget
from runtime.model_client import provider_message, safe_excerpt

__all__ = ["MAX_BODY_BYTES", "ModelProxy"]

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 8 * 1024 * 1024
_FORWARDED_HEADERS = ("content-type", "accept")
_CONNECT_TIMEOUT = 10.0
_STOP_TIMEOUT = 5.0

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class _Route:
    base_url: str
    api_key: str | None = field(repr=False)


class ModelProxy:
    """The relay; one per OpenCode engine. :meth:`start` and :meth:`stop` on the loop.

    Args:
        policy: The egress policy every forwarded connection follows.
        read_timeout: Seconds allowed between two reads from the upstream.
    """

    def __init__(self, policy: EgressPolicy, *, read_timeout: float) -> None:
        self._routes: dict[str, _Route] = {}
        self._tokens: dict[tuple[str, str | None], str] = {}
        self._client = httpx2.AsyncClient(
            transport=EgressTransport(policy),
            timeout=httpx2.Timeout(read_timeout, connect=min(read_timeout, _CONNECT_TIMEOUT)),
            follow_redirects=False,
            trust_env=False,
        )
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.base_url: str | None = None

    def __repr__(self) -> str:
        return f"ModelProxy({self.base_url!r}, routes={len(self._routes)})"

    async def start(self) -> None:
        """Listen on a free loopback port (``base_url`` is set when this returns)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = Config()
        config.bind = [f"fd://{sock.detach()}"]  # hypercorn owns the socket from here
        config.accesslog = None
        config.errorlog = log
        config.graceful_timeout = 1.0
        self._task = asyncio.create_task(
            serve(self._app, config, shutdown_trigger=self._stopping.wait, mode="asgi")  # type: ignore[arg-type]
        )
        self.base_url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        """Stop listening and close the upstream connections."""
        self._stopping.set()
        task, self._task = self._task, None
        if task is not None:
            try:
                await asyncio.wait_for(task, _STOP_TIMEOUT)
            except (TimeoutError, asyncio.CancelledError, OSError):
                log.warning("model relay did not stop in %s s", _STOP_TIMEOUT)
        await self._client.aclose()

    def route(self, target: ModelTarget) -> str:
        """The relay URL standing in for ``target.base_url`` (stable for the same endpoint
        and key, so OpenCode's provider entry does not change between runs).

        Raises:
            RuntimeError: the relay is not started.
        """
        if self.base_url is None:
            raise RuntimeError("model relay is not started")
        key = (target.base_url.rstrip("/"), target.api_key)
        token = self._tokens.get(key)
        if token is None:
            token = secrets.token_urlsafe(24)
            self._tokens[key] = token
            self._routes[token] = _Route(key[0], target.api_key)
        return f"{self.base_url}/{token}"

    # --- the ASGI app ------------------------------------------------------------------

    async def _app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        token, _, rest = scope["path"].lstrip("/").partition("/")
        route = self._routes.get(token)
        if route is None or scope["method"] not in ("GET", "POST"):
            await _answer(send, 404, "not found")
            return
        body = await _read_body(receive)
        if body is None:
            await _answer(send, 413, "request body too large")
            return
        url = f"{route.base_url}/{rest}"
        if scope.get("query_string"):
            url += "?" + scope["query_string"].decode("latin-1")
        headers = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope["headers"]
            if name.decode("latin-1").lower() in _FORWARDED_HEADERS
        }
        if route.api_key:
            headers["authorization"] = f"Bearer {route.api_key}"
        await self._forward(scope["method"], url, headers, body, route, receive, send)

    async def _forward(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes,
        route: _Route,
        receive: Receive,
        send: Send,
    ) -> None:
        request = self._client.build_request(method, url, headers=headers, content=body)
        try:
            upstream = await self._client.send(request, stream=True)
        except httpx2.HTTPError as exc:
            log.info("model relay: %s failed: %s", route.base_url,
                     getattr(exc, "reason", None) or exc)  # fmt: skip
            await _answer(
                send, 502, f"model endpoint could not be reached (connection failed, or "
                f"{REFUSED_MESSAGE})",
            )  # fmt: skip
            return
        try:
            if upstream.status_code >= 400:
                text = _error_text(await _read_capped(upstream))
                if route.api_key:
                    text = text.replace(route.api_key, "[redacted]")
                excerpt = safe_excerpt(text, quote=False) or f"HTTP {upstream.status_code}"
                await _answer(send, upstream.status_code, excerpt)
                return
            content_type = upstream.headers.get("content-type", "application/octet-stream")
            await send({
                "type": "http.response.start",
                "status": upstream.status_code,
                "headers": [(b"content-type", content_type.encode("latin-1"))],
            })  # fmt: skip
            await _stream(upstream, receive, send)
        finally:
            await upstream.aclose()


async def _read_body(receive: Receive) -> bytes | None:
    """The request body, or None when it exceeds :data:`MAX_BODY_BYTES`."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def _read_capped(response: httpx2.Response, limit: int = 64 * 1024) -> bytes:
    data = bytearray()
    async for chunk in response.aiter_bytes():
        data += chunk
        if len(data) >= limit:
            break
    return bytes(data[:limit])


def _error_text(raw: bytes) -> str:
    """The message of an OpenAI-style error body, else the body as text."""
    text = raw.decode("utf-8", "replace")
    try:
        body = json.loads(text)
    except ValueError:
        return text
    if isinstance(body, dict) and "error" in body:
        body = body["error"]
    return provider_message(body) or text


async def _stream(upstream: httpx2.Response, receive: Receive, send: Send) -> None:
    """Copy the upstream body to the client until either side is done; a client that
    leaves (OpenCode aborted) closes the upstream response too (the caller's finally)."""

    async def pump() -> None:
        async for chunk in upstream.aiter_bytes():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def gone() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    pumping = asyncio.create_task(pump())
    watching = asyncio.create_task(gone())
    try:
        await asyncio.wait({pumping, watching}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (pumping, watching):
            task.cancel()
        for task in (pumping, watching):
            with contextlib.suppress(asyncio.CancelledError, httpx2.HTTPError, OSError):
                await task


async def _answer(send: Send, status: int, message: str) -> None:
    """An OpenAI-shaped error response ``{"error": {"message": ...}}``."""
    body = json.dumps({"error": {"message": message, "type": "runwright_relay"}}).encode()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode())],
    })  # fmt: skip
    await send({"type": "http.response.body", "body": body, "more_body": False})
