"""A real Hypercorn server on loopback for the app under test (same event loop)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

from hypercorn.asyncio import serve

from runtime.settings import Settings
from web.app import create_app
from web.server import hypercorn_config
from web.services import build_services


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def hypercorn_on_loopback(settings: Settings) -> AsyncIterator[tuple[str, Any]]:
    """Serve a new app for ``settings`` with Hypercorn, configured as ``runwright serve``
    configures it; yields ``(base_url, services)`` once ``/healthz`` answers, and stops the
    server (and so the app's lifespan) on exit."""
    services = build_services(settings)
    app = create_app(settings, services=services)
    port = free_port()
    config = hypercorn_config(f"127.0.0.1:{port}", settings)
    config.accesslog = None
    stop = asyncio.Event()
    server = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
    try:
        await _wait_ready(port, server)
        yield f"http://127.0.0.1:{port}", services
    finally:
        stop.set()
        await asyncio.wait_for(server, 60)


async def _wait_ready(port: int, server: asyncio.Task[Any], within: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        if server.done():
            server.result()  # raises what stopped it
            raise AssertionError("the server stopped before it was ready")
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        await writer.drain()
        head = await reader.read(64)
        writer.close()
        if head.startswith(b"HTTP/1.1 200"):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"no 200 from /healthz on port {port} within {within} s")
