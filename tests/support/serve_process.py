"""A real ``runwright serve`` child process for end-to-end and security tests (the
in-process Hypercorn server is :mod:`tests.support.server`; several processes on one
database: :mod:`tests.support.nodes`)."""

from __future__ import annotations

import asyncio
import inspect
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.live_server import server_process as serve
from tests.support.server import free_port

__all__ = ["free_port", "serve", "serve_env", "until"]


def serve_env(database_url: str, data_dir: Path, secret: str, **extra: str) -> dict[str, str]:
    """This process's environment plus what a test server needs: the test database, a
    private data directory, the JWT secret, the scripted engine on, no local model; then
    ``extra`` (``RUNWRIGHT_*`` overrides)."""
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "RUNWRIGHT_DATA_DIR": str(data_dir),
        "RUNWRIGHT_JWT_SECRET": secret,
        "RUNWRIGHT_SCRIPTED_ENGINE_ENABLED": "1",
        "RUNWRIGHT_LOCAL_MODEL_AUTOSTART": "0",
        **extra,
    }


async def until(predicate: Callable[[], Any], *, within: float, what: str) -> Any:
    """Call ``predicate()`` (sync, or async: its result is awaited) every 50 ms until it is
    truthy (its value) or ``within`` seconds passed (AssertionError naming ``what``)."""
    deadline = time.monotonic() + within
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        assert time.monotonic() < deadline, f"not within {within} s: {what}"
        await asyncio.sleep(0.05)
