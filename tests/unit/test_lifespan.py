"""Ordered start, reverse stop, undo on a failed start, grace timeout."""

from __future__ import annotations

import asyncio

import pytest

from web.lifespan import Lifespan


def _recorder(log, name, *, fail_start=False, fail_stop=False, hang_stop=False):
    async def start():
        log.append(f"start {name}")
        if fail_start:
            raise RuntimeError(name)

    async def stop():
        log.append(f"stop {name}")
        if fail_stop:
            raise RuntimeError(name)
        if hang_stop:
            await asyncio.sleep(60)

    return start, stop


async def test_starts_in_order_and_stops_in_reverse():
    log: list[str] = []
    lifespan = Lifespan(grace_seconds=1)
    for name in ("db", "writer", "supervisor"):
        lifespan.add(name, *_recorder(log, name))
    assert lifespan.names == ["db", "writer", "supervisor"]
    await lifespan.start()
    await lifespan.stop()
    assert log == [
        "start db", "start writer", "start supervisor",
        "stop supervisor", "stop writer", "stop db",
    ]  # fmt: skip


async def test_failed_start_stops_what_started_and_reraises():
    log: list[str] = []
    lifespan = Lifespan(grace_seconds=1)
    lifespan.add("db", *_recorder(log, "db"))
    lifespan.add("broken", *_recorder(log, "broken", fail_start=True))
    lifespan.add("never", *_recorder(log, "never"))
    with pytest.raises(RuntimeError, match="broken"):
        await lifespan.start()
    assert log == ["start db", "start broken", "stop db"]


async def test_stop_survives_failing_and_hanging_steps():
    log: list[str] = []
    lifespan = Lifespan(grace_seconds=0.05)
    lifespan.add("db", *_recorder(log, "db"))
    lifespan.add("hangs", *_recorder(log, "hangs", hang_stop=True))
    lifespan.add("fails", *_recorder(log, "fails", fail_stop=True))
    await lifespan.start()
    await lifespan.stop()
    assert log[-3:] == ["stop fails", "stop hangs", "stop db"]


def test_duplicate_names_are_refused():
    lifespan = Lifespan(grace_seconds=1)
    start, stop = _recorder([], "x")
    lifespan.add("x", start, stop)
    with pytest.raises(ValueError, match="duplicate"):
        lifespan.add("x", start, stop)
