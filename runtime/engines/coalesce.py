"""Coalescing of streamed text before it leaves an engine (DESIGN.md section 2).

:func:`coalesce_text` wraps a stream of model events: the first text piece passes at once
(time to first token matters), later pieces are joined and released at most every
``window`` seconds — by a timer, so a pause in the stream never holds back text already
received — and any other item first releases the pending text, keeping the order.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from typing import TypeVar

from runtime.model_client import TextDelta

T = TypeVar("T")


async def coalesce_text(
    source: AsyncIterator[TextDelta | T], window: float
) -> AsyncGenerator[TextDelta | T, None]:
    """Yield ``source``'s items with consecutive :class:`TextDelta` pieces joined.

    Args:
        source: An async generator of model events (it is closed when this one is).
        window: Minimum seconds between two released text pieces (0 passes every piece).

    Yields:
        The same items in the same order; text joined into fewer, larger pieces.

    Cancelling the consumer cancels the pending read of ``source`` (closing its HTTP
    stream) before the CancelledError propagates.
    """
    loop = asyncio.get_running_loop()
    pending_text: list[str] = []
    last_release = -1e9
    reader: asyncio.Future[TextDelta | T] | None = None
    try:
        while True:
            if reader is None:
                reader = asyncio.ensure_future(anext(source))
            timeout = None
            if pending_text:
                timeout = max(0.0, last_release + window - loop.time())
            done, _ = await asyncio.wait({reader}, timeout=timeout)
            if not done:  # the window elapsed with text waiting
                yield TextDelta("".join(pending_text))
                pending_text.clear()
                last_release = loop.time()
                continue
            try:
                item = reader.result()
            except StopAsyncIteration:
                break
            finally:
                reader = None
            if isinstance(item, TextDelta):
                if not item.text:
                    continue
                pending_text.append(item.text)
                if loop.time() - last_release >= window:
                    yield TextDelta("".join(pending_text))
                    pending_text.clear()
                    last_release = loop.time()
                continue
            if pending_text:
                yield TextDelta("".join(pending_text))
                pending_text.clear()
                last_release = loop.time()
            yield item
        if pending_text:
            yield TextDelta("".join(pending_text))
    finally:
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration, Exception):
                await reader
        aclose = getattr(source, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()
