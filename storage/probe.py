"""A dedicated connection for health checks, outside the pool.

A readiness check that borrowed from the pool would wait behind every queued request when
the pool is saturated (1,500 creates in flight kept ``/healthz`` waiting up to 14.7 s); this
probe owns one connection of its own, so its answer measures Postgres, not our queue.
"""

from __future__ import annotations

import contextlib

import asyncpg

from storage.database import DRIVER_ERRORS, translate
from storage.errors import DatabaseUnavailable
from storage.sql import q


class DatabaseProbe:
    """Pings Postgres over one private connection, reconnecting after a failure.

    Args:
        dsn: the same DSN the pool uses.
        timeout: seconds a connect or a ping may take before it counts as a failure.

    Every method runs on the asyncio loop; calls must not overlap (one caller, the
    readiness monitor).
    """

    def __init__(self, dsn: str, *, timeout: float) -> None:
        self._dsn = dsn
        self._timeout = timeout
        self._conn: asyncpg.Connection | None = None

    async def ping(self) -> None:
        """One ``SELECT 1`` round trip (opening the connection first when needed).

        Raises:
            DatabaseUnavailable: no connection, no answer within ``timeout``, or any driver
                error; the connection is dropped so the next ping reconnects.
        """
        try:
            if self._conn is None or self._conn.is_closed():
                self._conn = await asyncpg.connect(self._dsn, timeout=self._timeout)
            await self._conn.fetchval(q("health_ping"), timeout=self._timeout)
        except DRIVER_ERRORS as exc:  # any failure means "not answering now"
            await self.close()
            raise DatabaseUnavailable(str(translate(exc))) from exc

    async def close(self) -> None:
        """Drop the connection (``terminate``: never waits on a dead server)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(*DRIVER_ERRORS):
                conn.terminate()
