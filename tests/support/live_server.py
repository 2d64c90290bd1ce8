"""Real HTTP servers on loopback for tests of HTTP clients (the Python client, the browser
viewer): the whole app under Hypercorn in this test's event loop, or a ``runwright serve``
process that a test can kill and start again."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
from hypercorn.asyncio import serve
from hypercorn.config import Config

from runtime.processes import free_port
from runtime.settings import Settings
from web.app import create_app
from web.services import Services, build_services

ROOT = Path(__file__).resolve().parents[2]
START_BUDGET_SECONDS = 60.0


async def wait_healthy(
    base_url: str,
    alive: Callable[[], bool] = lambda: True,
    *,
    budget: float = START_BUDGET_SECONDS,
) -> None:
    """Poll ``/healthz`` until 200 (within ``budget`` seconds).

    Raises:
        AssertionError: ``alive()`` turned false, or the budget ran out.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + budget
    async with httpx.AsyncClient(base_url=base_url, timeout=5.0) as http:
        while True:
            assert alive(), "the server exited during start-up"
            with contextlib.suppress(httpx.TransportError):
                if (await http.get("/healthz")).status_code == 200:
                    return
            assert loop.time() < deadline, f"{base_url} did not become healthy"
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def hypercorn_app(settings: Settings) -> AsyncIterator[tuple[str, Services]]:
    """Serve ``create_app(settings)`` with Hypercorn on a free loopback port (its lifespan
    runs under Hypercorn); yields ``(base_url, services)``; stops it on exit."""
    services = build_services(settings)
    app = create_app(settings, services=services)
    port = free_port()
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.graceful_timeout = 2.0
    config.accesslog = None
    stop = asyncio.Event()
    task = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_healthy(base, lambda: not task.done())
        yield base, services
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


@contextlib.asynccontextmanager
async def server_process(
    env: dict[str, str], port: int
) -> AsyncIterator[asyncio.subprocess.Process]:
    """Run ``python -m web.cli serve --port PORT`` with ``env`` until healthy; yields the
    process; kills its process group on exit (a test may kill it sooner)."""
    proc = await spawn_server(env, port)
    try:
        await wait_healthy(f"http://127.0.0.1:{port}", lambda: proc.returncode is None)
        yield proc
    finally:
        await kill(proc)


async def spawn_server(
    env: dict[str, str], port: int, output: Path | None = None
) -> asyncio.subprocess.Process:
    """Start ``python -m web.cli serve --port PORT`` with exactly ``env`` in a new session
    (its own process group, so signals reach it and its children alike); its stdout and
    stderr go to ``output`` (appended) or nowhere. Does not wait for it to be ready."""
    sink: Any = subprocess.DEVNULL
    if output is not None:
        sink = open(output, "ab")  # noqa: ASYNC230, SIM115 - a local append; the child keeps its own copy
    try:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "web.cli", "serve", "--port", str(port),
            env=env, cwd=ROOT, start_new_session=True, stdout=sink, stderr=sink,
        )  # fmt: skip
    finally:
        if output is not None:
            sink.close()


async def kill(proc: asyncio.subprocess.Process) -> None:
    """SIGKILL the process group (no shutdown hooks run) and reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    await asyncio.wait_for(proc.wait(), 30)
