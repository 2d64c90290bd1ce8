"""Node liveness (``runwright_nodes``, migration 0007; docs/design.md section 9).

Each serving process beats its row every ``RUNWRIGHT_NODE_HEARTBEAT_SECONDS`` over **its
own connection**: a beat that borrowed from the pool would wait behind a saturated pool,
and a busy node would look dead to the others, which then settle its runs.
"""

from __future__ import annotations

import contextlib

import asyncpg

from storage.database import DRIVER_ERRORS, translate
from storage.sql import q


class NodeHeartbeat:
    """Beats one node's row over one private connection, reconnecting after a failure.

    Args:
        dsn: the DSN the pool uses.
        node_id: this node (``RUNWRIGHT_NODE_ID``).
        timeout: seconds a connect or a statement may take.

    Methods run on the asyncio loop and must not overlap (one caller, the beat task).
    """

    def __init__(self, dsn: str, node_id: str, *, timeout: float) -> None:
        self._dsn = dsn
        self._node_id = node_id
        self._timeout = timeout
        self._conn: asyncpg.Connection | None = None

    async def beat(self) -> None:
        """Record that this node is alive now (the database's clock).

        Raises:
            storage.errors.DatabaseUnavailable: no connection or no answer in time.
        """
        await self._execute("nodes_beat", self._node_id)

    async def leave(self) -> None:
        """Mark this node dead at once (a clean stop): the others settle what it still owns
        without waiting for its heartbeat to lapse."""
        await self._execute("nodes_leave", self._node_id)

    async def forget(self, older_than: float) -> None:
        """Delete the rows of nodes silent for ``older_than`` seconds."""
        await self._execute("nodes_forget", older_than)

    async def _execute(self, name: str, *args: object) -> None:
        try:
            if self._conn is None or self._conn.is_closed():
                self._conn = await asyncpg.connect(self._dsn, timeout=self._timeout)
            await self._conn.execute(q(name), *args, timeout=self._timeout)
        except DRIVER_ERRORS as exc:
            await self.close()
            raise translate(exc) from exc

    async def close(self) -> None:
        """Drop the connection (``terminate``: never waits on a dead server)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(*DRIVER_ERRORS):
                conn.terminate()
