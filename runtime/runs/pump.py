"""The engine pump: runs an engine session on the asyncio loop and feeds its actor.

Token deltas are coalesced before they cross into the actor thread (docs/design.md section 2):
the first delta goes at once (latency), later ones at most every ``window`` seconds, and
any other event flushes the pending text first so the order is kept.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import pykka

from runtime.engine import TERMINAL_EVENTS, Delta, EngineSession
from runtime.runs.messages import EngineBatch, EngineEnded

log = logging.getLogger(__name__)


class _Coalescer:
    def __init__(self, ref: pykka.ActorRef, token: int, window: float) -> None:
        self._ref = ref
        self._token = token
        self._window = window
        self._loop = asyncio.get_running_loop()
        self._text: list[str] = []
        self._last_flush = -1e9
        self._timer: asyncio.TimerHandle | None = None

    def delta(self, text: str) -> None:
        self._text.append(text)
        if self._timer is not None:
            return
        delay = self._last_flush + self._window - self._loop.time()
        if delay <= 0:
            self.send(())
        else:
            self._timer = self._loop.call_later(delay, self.send, ())

    def send(self, events: tuple[object, ...]) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._text:
            events = (Delta("".join(self._text)), *events)
            self._text.clear()
            self._last_flush = self._loop.time()
        if events:
            self._ref.tell(EngineBatch(self._token, events))


async def pump(
    session: EngineSession,
    ref: pykka.ActorRef,
    token: int,
    window: float,
    room: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Drive ``session.events()`` to its end and report to the actor ``ref``.

    Always ends with one :class:`EngineEnded` (unless the actor is gone), sent only after
    ``session.close()`` returned, so the actor knows the engine has really stopped.
    ``room`` (the event writer's :meth:`~runtime.runs.writer.EventWriter.wait_for_room`)
    is awaited before each engine event is taken: while the writer's backlog is over its
    bound the engine is not read, so memory stays bounded and no event is dropped.
    """
    error: str | None = None
    cancelled = False
    coalescer = _Coalescer(ref, token, window)
    try:
        async for event in session.events():
            if room is not None:
                await room()
            if isinstance(event, Delta):
                if event.content:
                    coalescer.delta(event.content)
                continue
            coalescer.send((event,))
            if isinstance(event, TERMINAL_EVENTS):
                break
        coalescer.send(())
    except asyncio.CancelledError:
        cancelled = True
        coalescer.send(())  # text already received is kept (a cancelled run's partial reply)
    except pykka.ActorDeadError:
        return
    except Exception as exc:  # the engine's exception path (contract 3.3)
        log.info("engine session of token %s raised: %r", token, exc)
        error = str(exc) or type(exc).__name__
        coalescer.send(())
    finally:
        try:
            await asyncio.shield(session.close())
        except Exception:
            log.exception("closing an engine session failed")
    try:
        ref.tell(EngineEnded(token, error, cancelled))
    except pykka.ActorDeadError:
        pass
