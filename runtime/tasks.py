"""Stopping a background task: the one cancel-then-wait used by every ``stop()``."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


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
