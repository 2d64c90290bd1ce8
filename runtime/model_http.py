"""The HTTP transport under the OpenAI SDK's client: ``httpx2``'s own, with a cheaper idle
connection check.

Why: ``httpcore2``'s connection pool walks every connection it holds each time a request
starts and each time a response closes, and asks each idle one whether the server closed
it (``get_extra_info("is_readable")``). Through ``anyio`` that question builds the socket's
whole attribute table first (a ``getpeername`` system call and seven closures) before it
polls the socket. A server running 50 runs at once keeps ~50 connections to a model
endpoint, most of them idle between requests, so every model request paid that up to ~100
times: about a quarter of the native engine's CPU per run (docs/benchmarks.md, "Native
engine CPU per run, third pass"). Here the stream keeps its socket and polls it directly:
the same check, the same answer.

Nothing else changes: connection limits, TLS, proxies from the environment (they are
mounted by the ``httpx2`` client, not by this transport) and error mapping stay
``httpx2``'s and ``httpcore2``'s.
"""

from __future__ import annotations

import select
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore2
import httpx2

__all__ = ["PooledTransport"]


class _Stream(httpcore2.AsyncNetworkStream):
    """A network stream that answers ``is_readable`` from its own socket, found once.

    Everything else is the wrapped stream's (``httpcore2``'s ``anyio`` stream)."""

    __slots__ = ("_inner", "_socket")

    def __init__(self, inner: httpcore2.AsyncNetworkStream) -> None:
        self._inner = inner
        self._socket: Any = None

    # httpcore2's interface passes timeouts as arguments (ASYNC109 does not apply).
    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> httpcore2.AsyncNetworkStream:
        return _Stream(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        """As the wrapped stream's, except ``is_readable``: a poll of the socket (which
        stays the same object for the connection's life; a closed one reads as readable,
        as in ``httpcore2``)."""
        if info != "is_readable":
            return self._inner.get_extra_info(info)
        sock = self._socket
        if sock is None:
            sock = self._socket = self._inner.get_extra_info("socket")
        return _readable(sock)


def _readable(sock: Any) -> bool:
    """Whether a read on ``sock`` would return at once (data, or the b"" of a close);
    True for a closed socket or none (``httpcore2``'s rule: such a connection is dropped)."""
    fd = -1 if sock is None else sock.fileno()
    if fd < 0:
        return True
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


class _Backend(httpcore2.AsyncNetworkBackend):
    """Connects with the pool's own backend and wraps each stream in :class:`_Stream`."""

    def __init__(self, inner: httpcore2.AsyncNetworkBackend) -> None:
        self._inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        stream = await self._inner.connect_tcp(
            host, port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )
        return _Stream(stream)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        stream = await self._inner.connect_unix_socket(
            path, timeout=timeout, socket_options=socket_options
        )
        return _Stream(stream)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class PooledTransport(httpx2.AsyncHTTPTransport):
    """``httpx2.AsyncHTTPTransport`` (same arguments) whose pool checks idle connections
    cheaply (module docstring).

    ``httpx2`` has no argument for the pool's network backend, so it is set on the pool
    it built. If a future ``httpx2``/``httpcore2`` builds its pool differently, the
    transport works as the plain one and :attr:`cheap_idle_check` is False
    (``tests/unit/test_model_http.py`` fails then, so the loss is seen).
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        pool = getattr(self, "_pool", None)
        self.cheap_idle_check = False
        if isinstance(pool, httpcore2.AsyncConnectionPool) and hasattr(pool, "_network_backend"):
            pool._network_backend = _Backend(pool._network_backend)
            self.cheap_idle_check = True
