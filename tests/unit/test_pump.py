"""The engine pump: deltas are coalesced before they reach the actor (first one at once,
later ones at most every window, flushed before any other event), and EngineEnded comes
last, after the session closed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from runtime.engine import Completed, Delta, EngineSession, PlanUpdated
from runtime.runs.messages import EngineBatch, EngineEnded
from runtime.runs.pump import pump


class Inbox:
    """Stands in for a RunActor's ref: records what the pump tells it, with the time."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.messages: list[tuple[float, Any]] = []

    def tell(self, message: Any) -> None:
        self.messages.append((self.loop.time(), message))

    def batches(self) -> list[tuple[Any, ...]]:
        return [m.events for _, m in self.messages if isinstance(m, EngineBatch)]


class Script(EngineSession):
    def __init__(self, items: list[tuple[float, Any]], *, raise_at_end: str | None = None):
        self.items = items
        self.raise_at_end = raise_at_end
        self.closed = False

    async def events(self) -> AsyncIterator[Any]:  # type: ignore[override]
        for pause, item in self.items:
            if pause:
                await asyncio.sleep(pause)
            yield item
        if self.raise_at_end:
            raise RuntimeError(self.raise_at_end)

    async def close(self) -> None:
        self.closed = True


async def test_first_delta_at_once_then_windowed_and_flushed_before_other_events():
    inbox = Inbox()
    session = Script(
        [(0, Delta("a")), (0, Delta("b")), (0, Delta("c")), (0.2, Delta("d")),
         (0, PlanUpdated({"p": 1})), (0, Delta("e")), (0, Completed({}))]
    )  # fmt: skip
    await pump(session, inbox, token=7, window=0.05)  # type: ignore[arg-type]
    batches = inbox.batches()
    assert batches[0] == (Delta("a"),)
    assert batches[1] == (Delta("bc"),)  # released by the window timer during the pause
    assert batches[2] == (Delta("d"),)  # after a quiet window text goes at once again
    assert batches[3] == (PlanUpdated({"p": 1}),)
    assert batches[4] == (Delta("e"), Completed({}))  # pending text flushed before the end
    last = inbox.messages[-1][1]
    assert last == EngineEnded(7, None, False) and session.closed


async def test_many_tokens_become_few_messages():
    inbox = Inbox()
    session = Script([(0.001, Delta("x")) for _ in range(200)] + [(0, Completed({}))])
    await pump(session, inbox, token=1, window=0.03)  # type: ignore[arg-type]
    texts = [e.content for batch in inbox.batches() for e in batch if isinstance(e, Delta)]
    assert "".join(texts) == "x" * 200
    assert texts[0] == "x" and len(texts) < 40


async def test_an_engine_exception_is_reported_after_pending_text():
    inbox = Inbox()
    await pump(Script([(0, Delta("a")), (0, Delta("b"))], raise_at_end="boom"), inbox, 3, 10.0)  # type: ignore[arg-type]
    assert inbox.batches() == [(Delta("a"),), (Delta("b"),)]
    assert inbox.messages[-1][1] == EngineEnded(3, "boom", False)


async def test_cancel_reports_cancelled_after_closing_the_session():
    inbox = Inbox()
    session = Script([(0, Delta("a")), (30, Delta("never"))])
    task = asyncio.create_task(pump(session, inbox, 5, 0.01))  # type: ignore[arg-type]
    await asyncio.sleep(0.05)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert session.closed
    assert inbox.messages[-1][1] == EngineEnded(5, None, True)
