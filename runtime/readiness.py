"""Readiness: may this process take work now? Answered from memory, never from I/O.

A background task pings Postgres over a dedicated connection
(:class:`storage.probe.DatabaseProbe`) every ``interval`` seconds and remembers the last
success; components register named checks (the event writer is healthy, the process is not
draining) that read their own in-memory state. :meth:`Readiness.report` combines them
without awaiting anything, so ``/readyz`` answers in the time of a dictionary lookup however
busy the pool is.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from runtime.tasks import cancel_and_wait
from storage.errors import DatabaseUnavailable

log = logging.getLogger(__name__)

OK = "ok"
Check = Callable[[], str | None]
"""A readiness check: ``None`` when fine, else a short reason (shown on ``/readyz``)."""


@dataclass(frozen=True, slots=True)
class Report:
    """One readiness answer.

    Attributes:
        ready: every check passed.
        checks: check name -> ``"ok"`` or the reason it failed, in registration order
            (``database`` first).
    """

    ready: bool
    checks: dict[str, str]

    @property
    def reasons(self) -> list[str]:
        """``"<name>: <reason>"`` for each failed check."""
        return [f"{name}: {state}" for name, state in self.checks.items() if state != OK]


class Readiness:
    """The process's readiness, kept current by a probe task.

    Args:
        ping: one database round trip; raises
            :class:`~storage.errors.DatabaseUnavailable` when Postgres does not answer.
        interval: seconds between pings (``RUNWRIGHT_READINESS_INTERVAL_SECONDS``).
        stale_after: seconds after the last successful ping at which the database counts as
            unreachable even if no ping failed (a ping that hangs, a loop too busy to ping).
        clock: monotonic seconds (tests pass their own).
    """

    def __init__(
        self,
        ping: Callable[[], Awaitable[None]],
        *,
        interval: float,
        stale_after: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ping = ping
        self._interval = interval
        self._stale_after = stale_after
        self._clock = clock
        self._checks: dict[str, Check] = {"database": self._database}
        self._last_ok: float | None = None
        self._failure: str | None = "not checked yet"
        self._task: asyncio.Task[None] | None = None

    def add_check(self, name: str, check: Check) -> None:
        """Register a named check; it must not block or do I/O (it runs per request).

        Raises:
            ValueError: a check of that name exists.
        """
        if name in self._checks:
            raise ValueError(f"duplicate readiness check {name!r}")
        self._checks[name] = check

    def report(self) -> Report:
        """The current answer, from memory only. A check that raises counts as failed."""
        checks: dict[str, str] = {}
        for name, check in self._checks.items():
            try:
                reason = check()
            except Exception:  # a broken check must not break the health endpoint
                log.exception("readiness check %r raised", name)
                reason = "check failed"
            checks[name] = OK if reason is None else reason
        return Report(ready=all(state == OK for state in checks.values()), checks=checks)

    def database_failed(self) -> None:
        """Mark the database unreachable now (a component saw it fail); the next successful
        ping clears it."""
        self._last_ok = None
        self._failure = "unreachable"

    async def start(self) -> None:
        """Ping once (so a healthy process is ready when start-up ends), then keep pinging
        in the background."""
        await self._probe()
        self._task = asyncio.create_task(self._run(), name="readiness-probe")

    async def stop(self) -> None:
        """Stop the probe task."""
        task, self._task = self._task, None
        await cancel_and_wait(task)

    def _database(self) -> str | None:
        if self._last_ok is None:
            return self._failure or "unreachable"
        if self._clock() - self._last_ok > self._stale_after:
            return "no answer"
        return None

    async def _probe(self) -> None:
        try:
            await self._ping()
        except DatabaseUnavailable as exc:
            if self._last_ok is not None:
                log.warning("database unreachable: %s", exc)
            self.database_failed()
            return
        if self._last_ok is None and self._failure == "unreachable":
            log.info("database reachable again")
        self._last_ok = self._clock()
        self._failure = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self._probe()
            except Exception:  # never let the probe die: readiness would freeze
                log.exception("readiness probe failed unexpectedly")
                self.database_failed()
