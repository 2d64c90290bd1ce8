"""The one bridge between the asyncio loop and pykka actor threads (docs/design.md section 2).

- Loop -> actor: ``ref.tell(message)`` only. A handler that needs an answer puts a
  :class:`Reply` in the message and awaits :meth:`Reply.wait`; the actor answers with
  :meth:`Reply.set` / :meth:`Reply.fail`, which hop back with ``call_soon_threadsafe``.
  No pykka future is ever awaited or ``.get()``-ed on the loop (it would block the loop).
- Actor -> loop: :class:`LoopPort`. ``call`` schedules a plain function on the loop;
  ``run`` runs a coroutine there and blocks the *actor's* thread (never the loop's) until
  it returns.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Coroutine
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class ReplyTimeout(Exception):
    """An actor did not answer within the wait's timeout."""


class Reply(Generic[T]):
    """A one-shot answer channel from an actor thread to a coroutine on the loop.

    Create it on the loop (``Reply(loop)``); answer it from any thread. Answers after the
    waiter gave up are dropped.
    """

    __slots__ = ("_loop", "_future")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._future: asyncio.Future[T] = loop.create_future()

    def set(self, value: T) -> None:
        """Resolve with ``value`` (thread-safe)."""
        self._post(value, None)

    def fail(self, exc: BaseException) -> None:
        """Resolve with an exception raised in the waiter (thread-safe)."""
        self._post(None, exc)

    def _post(self, value: Any, exc: BaseException | None) -> None:
        try:
            self._loop.call_soon_threadsafe(self._resolve, value, exc)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            pass

    def _resolve(self, value: Any, exc: BaseException | None) -> None:
        if self._future.done():
            return
        if exc is not None:
            self._future.set_exception(exc)
        else:
            self._future.set_result(value)

    async def wait(self, timeout: float) -> T:  # noqa: ASYNC109 - a deadline, not a cancel scope
        """Await the answer.

        Raises:
            ReplyTimeout: no answer within ``timeout`` seconds.
        """
        try:
            return await asyncio.wait_for(asyncio.shield(self._future), timeout)
        except TimeoutError:
            raise ReplyTimeout(f"no answer within {timeout:g} s") from None


class LoopPort:
    """An actor's handle on the asyncio loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def call(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on the loop soon; does not wait."""
        self.loop.call_soon_threadsafe(fn, *args)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = 60.0) -> T:
        """Run ``coro`` on the loop and block this (actor) thread for its result.

        Must never be called from the loop's own thread (it would deadlock).

        Raises:
            Whatever ``coro`` raises; TimeoutError when it takes longer than ``timeout``.
        """
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"loop call took longer than {timeout} s") from None

    def spawn(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Start ``coro`` as a task on the loop; cancelling the returned future cancels it."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)
