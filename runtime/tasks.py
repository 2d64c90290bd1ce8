"""Background tasks: the one cancel-then-wait used by every ``stop()``, and
:class:`Supervised`, a task restarted after a crash."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)


async def cancel_and_wait(task: asyncio.Future[Any] | None) -> None:
    """Cancel ``task`` (a task or future; ``None`` is fine) and wait for it to finish.

    Its ``CancelledError`` is swallowed so the caller's shutdown goes on; any other error
    the task ended with (also before the cancel) propagates.
    """
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


RESTART_FIRST_SECONDS = 0.05
RESTART_MAX_SECONDS = 5.0


class Supervised:
    """A background task that must not die: if ``body`` raises, the error is logged and
    ``body`` runs again after a back-off (0.05 s doubling to 5 s; reset once a run of
    ``body`` lasted longer than the back-off cap). Only :meth:`stop` ends it.

    :meth:`unhealthy_reason` is a readiness check (``runtime/readiness.py``): "not running"
    before :meth:`start`, "restarting after a crash" from a crash until ``body`` runs again
    and calls :meth:`healthy` (a body calls it once it works: connected, started).

    Args:
        name: the task's name (logs, ``asyncio`` task name).
        body: the coroutine function to keep running.
    """

    def __init__(self, name: str, body: Callable[[], Awaitable[None]]) -> None:
        self.name = name
        self._body = body
        self._task: asyncio.Task[None] | None = None
        self._trouble: str | None = None

    def healthy(self) -> None:
        """``body`` says it works again (clears the crash reason)."""
        self._trouble = None

    def unhealthy_reason(self) -> str | None:
        """None while the task runs fine; else why not."""
        if self._task is None:
            return "not running"
        return self._trouble

    async def start(self) -> None:
        """Start the task (idempotent)."""
        if self._task is None:
            self._task = asyncio.create_task(self._supervise(), name=self.name)

    async def stop(self) -> None:
        """Cancel the task and wait for it."""
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _supervise(self) -> None:
        loop = asyncio.get_running_loop()
        delay = RESTART_FIRST_SECONDS
        while True:
            began = loop.time()
            try:
                await self._body()
                raise RuntimeError(f"{self.name} returned")  # a body runs until cancelled
            except Exception:
                self._trouble = "restarting after a crash"
                if loop.time() - began > RESTART_MAX_SECONDS:
                    delay = RESTART_FIRST_SECONDS
                log.exception("%s crashed; restarting it in %.2f s", self.name, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RESTART_MAX_SECONDS)
