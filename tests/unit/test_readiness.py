"""Readiness from memory (issue 10, part 2 item 6): the database probe's last answer, its
age, and the registered checks."""

from __future__ import annotations

import pytest

from runtime.readiness import Readiness
from storage.errors import DatabaseUnavailable


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Postgres:
    """Stands in for the probe's round trip: answers or raises as the test says."""

    def __init__(self) -> None:
        self.up = True

    async def ping(self) -> None:
        if not self.up:
            raise DatabaseUnavailable("connection refused")


async def test_database_state_follows_the_probe_and_goes_stale() -> None:
    clock, pg = Clock(), Postgres()
    readiness = Readiness(pg.ping, interval=60, stale_after=5, clock=clock)
    assert readiness.report().checks == {"database": "not checked yet"}
    await readiness.start()
    try:
        assert readiness.report().ready
        clock.now += 4.9
        assert readiness.report().ready
        clock.now += 0.2  # no successful ping for longer than stale_after
        report = readiness.report()
        assert not report.ready and report.checks["database"] == "no answer"
        pg.up = False
        await readiness._probe()
        assert readiness.report().checks["database"] == "unreachable"
        pg.up = True
        await readiness._probe()
        assert readiness.report().ready
        readiness.database_failed()
        assert readiness.report().reasons == ["database: unreachable"]
    finally:
        await readiness.stop()


async def test_checks_combine_and_a_raising_check_fails_closed() -> None:
    readiness = Readiness(Postgres().ping, interval=60, stale_after=5)
    state = {"draining": None}
    readiness.add_check("draining", lambda: state["draining"])

    def broken() -> str | None:
        raise RuntimeError("bug")

    await readiness.start()
    try:
        assert readiness.report().checks == {"database": "ok", "draining": "ok"}
        state["draining"] = "draining"
        report = readiness.report()
        assert not report.ready and report.reasons == ["draining: draining"]
        state["draining"] = None
        readiness.add_check("broken", broken)
        assert readiness.report().checks["broken"] == "check failed"
        with pytest.raises(ValueError):
            readiness.add_check("draining", lambda: None)
    finally:
        await readiness.stop()
