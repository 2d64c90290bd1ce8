"""Per-tenant caps on open event streams (fair shares, docs/security.md).

A stream holds a slot from the moment its route accepts it until its body ends (client
gone, terminal event, server stop). The count is per node: every node enforces the same
cap on its own streams, so one tenant can never hold all of a node's stream capacity.
"""

from __future__ import annotations

import asyncio
import collections
import uuid
import weakref
from collections.abc import AsyncIterator, Callable

RETRY_AFTER_SECONDS = 5


class StreamQuotaExceeded(Exception):
    """The tenant already holds its cap of open streams on this node."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"at most {limit} open streams per tenant")
        self.limit = limit


class StreamQuota:
    """Counts open streams per tenant and refuses those beyond ``per_tenant``.

    Args:
        per_tenant: open streams one tenant may hold on this node (>= 1).

    Only touched from the event loop's thread: no lock is needed.
    """

    def __init__(self, per_tenant: int) -> None:
        self.per_tenant = per_tenant
        self._open: collections.Counter[uuid.UUID] = collections.Counter()

    def open_streams(self, tenant_id: uuid.UUID) -> int:
        """Streams ``tenant_id`` holds open on this node now."""
        return self._open[tenant_id]

    def guard(self, tenant_id: uuid.UUID, body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """Take a slot for ``tenant_id`` and return ``body`` wrapped to give it back.

        Call on the event loop. The slot is returned when the wrapped body finishes or
        is closed, or, if the server never starts iterating it (the client left before
        the response began), when the wrapper is garbage-collected.

        Raises:
            StreamQuotaExceeded: the tenant holds ``per_tenant`` open streams already.
        """
        if self._open[tenant_id] >= self.per_tenant:
            raise StreamQuotaExceeded(self.per_tenant)
        self._open[tenant_id] += 1
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            self._open[tenant_id] -= 1
            if self._open[tenant_id] <= 0:
                del self._open[tenant_id]

        async def held() -> AsyncIterator[bytes]:
            try:
                async for chunk in body:
                    yield chunk
            finally:
                release()
                # Returned here: the finaliser has nothing left to do. Detached, it does
                # not wake the loop through its self-pipe (a syscall and a loop iteration
                # per stream, measurable in the issue 10 throughput counts).
                finalizer.detach()
                aclose = getattr(body, "aclose", None)
                if aclose is not None:
                    await aclose()

        wrapper = held()
        # The garbage collector may run the finaliser on any thread: hop to the loop.
        loop = asyncio.get_running_loop()
        finalizer = weakref.finalize(wrapper, _call_on_loop, loop, release)
        return wrapper


def _call_on_loop(loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
    if loop.is_closed():
        return
    try:
        loop.call_soon_threadsafe(callback)
    except RuntimeError:  # the loop closed meanwhile: nothing left to count
        pass
