"""An SSE stream of a real server read over real sockets (httpx), incrementally.

:class:`SseStream` opens ``GET <url>`` as a streaming response and reads it in a background
task, so a test can wait for a condition on the events received so far
(:meth:`SseStream.until`) while it does other things (cancel the run, kill a node), and
can tell a stream the server ended (:attr:`SseStream.ended`) from one still open.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from tests.support.runs import parse_sse


class SseStream:
    """``async with SseStream(http, url) as stream: await stream.until(...)``.

    Args:
        http: a client for the server (its headers are sent).
        url: the stream's path (``.../runs/{id}/stream``, maybe with ``?after=``).
        headers: extra request headers (e.g. ``Last-Event-ID``).

    Attributes:
        status: the response status (set once the head arrived).
        text: everything received so far.
        ended: the server closed the stream.
    """

    def __init__(
        self, http: httpx.AsyncClient, url: str, headers: Mapping[str, str] | None = None
    ) -> None:
        self._http = http
        self._url = url
        self._headers = dict(headers or {})
        self.status: int | None = None
        self.text = ""
        self.ended = False
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._error: BaseException | None = None

    async def __aenter__(self) -> SseStream:
        self._task = asyncio.create_task(self._read())
        await self.until(lambda _: self.status is not None, within=60.0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                await self._task

    @property
    def events(self) -> list[dict[str, Any]]:
        """Messages received so far: ``{"id": seq, "data": envelope, "raw": text}``."""
        return parse_sse(self.text)

    @property
    def seqs(self) -> list[int]:
        """The ``id:`` of each message received so far."""
        return [int(e["id"]) for e in self.events if e["id"] is not None]

    async def until(
        self, predicate: Callable[[list[dict[str, Any]]], bool], *, within: float = 60.0
    ) -> list[dict[str, Any]]:
        """Wait until ``predicate(events)`` holds; returns the events.

        Raises:
            AssertionError: the stream ended or ``within`` seconds passed first.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not predicate(self.events):
            if self._error is not None:
                raise AssertionError(f"the stream failed: {self._error!r}")
            assert not self.ended, f"the stream ended first; got {self.events!r}"
            remaining = deadline - loop.time()
            assert remaining > 0, f"stream condition not met in {within} s; got {self.events!r}"
            self._changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
        return self.events

    async def until_ended(self, *, within: float = 60.0) -> list[dict[str, Any]]:
        """Wait until the server closed the stream; returns every event.

        Raises:
            AssertionError: still open after ``within`` seconds.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not self.ended and self._error is None:
            remaining = deadline - loop.time()
            assert remaining > 0, f"stream still open after {within} s; got {self.events!r}"
            self._changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
        if self._error is not None:
            raise AssertionError(f"the stream failed: {self._error!r}")
        return self.events

    async def _read(self) -> None:
        try:
            async with self._http.stream(
                "GET", self._url, headers=self._headers, timeout=httpx.Timeout(30.0, read=None)
            ) as response:
                self.status = response.status_code
                self._changed.set()
                async for chunk in response.aiter_text():
                    self.text += chunk
                    self._changed.set()
            self.ended = True
        except (httpx.HTTPError, OSError) as exc:
            self._error = exc
        finally:
            self._changed.set()
