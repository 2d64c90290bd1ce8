"""Ordered start-up and reverse shutdown of the app's components (STYLE.md rule 6).

A flat list of named steps: :meth:`Lifespan.start` runs them in order; if one fails, the
ones already started are stopped in reverse and the error propagates (the server does not
come up half-built). :meth:`Lifespan.stop` stops every started step in reverse, giving each
``grace_seconds`` before its stop is cancelled, and keeps going when one fails.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

Hook = Callable[[], Awaitable[None]]


class NotStarted(RuntimeError):
    """A component was used before the app's lifespan started it (or after it stopped)."""


@dataclass(frozen=True, slots=True)
class Step:
    """One component: ``start`` at boot, ``stop`` (optional) at shutdown."""

    name: str
    start: Hook
    stop: Hook | None = None


class Lifespan:
    """The named, ordered start/stop list; one per app, built by ``create_app``.

    Args:
        grace_seconds: how long each stop hook may take before it is cancelled
            (``RUNWRIGHT_SHUTDOWN_GRACE_SECONDS``).
    """

    def __init__(self, *, grace_seconds: float) -> None:
        self._steps: list[Step] = []
        self._started: list[Step] = []
        self._grace = grace_seconds

    @property
    def names(self) -> list[str]:
        """Step names in start order."""
        return [step.name for step in self._steps]

    def add(self, name: str, start: Hook, stop: Hook | None = None) -> None:
        """Append a step; it starts after every step added before it and stops before them.

        Raises:
            ValueError: a step of that name exists, or the lifespan already started.
        """
        if any(step.name == name for step in self._steps):
            raise ValueError(f"duplicate lifespan step {name!r}")
        if self._started:
            raise ValueError("cannot add a step after start")
        self._steps.append(Step(name, start, stop))

    async def start(self) -> None:
        """Start every step in order.

        Raises:
            Exception: whatever the failing step raised, after undoing the started ones.
        """
        for step in self._steps:
            log.debug("starting %s", step.name)
            try:
                await step.start()
            except BaseException:
                log.exception("start-up step %r failed; stopping what started", step.name)
                await self.stop()
                raise
            self._started.append(step)

    async def stop(self) -> None:
        """Stop the started steps in reverse order; never raises for a failing stop hook."""
        while self._started:
            step = self._started.pop()
            if step.stop is None:
                continue
            log.debug("stopping %s", step.name)
            try:
                await asyncio.wait_for(step.stop(), timeout=self._grace or None)
            except TimeoutError:
                log.error("stopping %r took longer than %.1fs; cancelled", step.name, self._grace)
            except Exception:
                log.exception("stopping %r failed", step.name)
