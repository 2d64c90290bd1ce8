"""LISTEN/NOTIFY at the storage boundary: one dedicated listening connection, and sending.

A :class:`ListenConnection` is a single asyncpg connection outside the pool (a pooled
connection is reset and handed to others; a listener must stay put). It LISTENs on the
channels it is opened with and hands every notification to one callback on the loop. It
reports its own loss (:attr:`ListenConnection.lost`: the server terminated it, the socket
closed) and :meth:`ListenConnection.ping` finds a connection that went silent. It never
reconnects itself: its owner (``runtime/cluster/listener.py``) does, with back-off.

:func:`notify` sends one notification through the pool (or inside a transaction, where it
is delivered only if that transaction commits).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from typing import Any

import asyncpg

from storage.database import DRIVER_ERRORS, Database, translate
from storage.errors import DatabaseUnavailable
from storage.sql import q

MAX_PAYLOAD_BYTES = 7999
"""Postgres refuses a NOTIFY payload of 8000 bytes or more."""

OnNotify = Callable[[str, str], None]
"""Called on the loop with ``(channel, payload)`` for every notification received."""


class ListenConnection:
    """One private connection LISTENing on a fixed set of channels.

    Open it with :meth:`open`; every method runs on the asyncio loop.
    """

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn
        self.lost = asyncio.Event()
        """Set when the server or the network ended the connection."""

    @classmethod
    async def open(
        cls,
        dsn: str,
        channels: Iterable[str],
        on_notify: OnNotify,
        *,
        application_name: str,
        seconds: float,
    ) -> ListenConnection:
        """Connect and LISTEN on ``channels``.

        Args:
            dsn: the DSN the pool uses.
            channels: channel names (fixed identifiers, never user input).
            on_notify: gets each notification.
            application_name: shown in ``pg_stat_activity`` (at most 63 bytes are kept), so
                an operator (or a test) can find this connection.
            seconds: how long the connect and each LISTEN may take.

        Raises:
            DatabaseUnavailable: the connection or a LISTEN failed.
        """
        try:
            conn = await asyncpg.connect(
                dsn, timeout=seconds, server_settings={"application_name": application_name}
            )
        except DRIVER_ERRORS as exc:
            raise DatabaseUnavailable(str(translate(exc))) from exc
        self = cls(conn)
        conn.add_termination_listener(lambda _conn: self.lost.set())

        def deliver(_conn: Any, _pid: int, channel: str, payload: str) -> None:
            on_notify(channel, payload)

        try:
            for channel in channels:
                await asyncio.wait_for(conn.add_listener(channel, deliver), seconds)
        except (*DRIVER_ERRORS, TimeoutError) as exc:
            self.close()
            raise DatabaseUnavailable(str(translate(exc))) from exc
        return self

    async def ping(self, seconds: float) -> None:
        """One round trip: proves the connection (and so its LISTENs) still works.

        Raises:
            DatabaseUnavailable: no answer within ``seconds``, or a driver error.
        """
        try:
            await self._conn.fetchval(q("health_ping"), timeout=seconds)
        except (*DRIVER_ERRORS, TimeoutError) as exc:
            raise DatabaseUnavailable(str(translate(exc))) from exc

    @property
    def backend_pid(self) -> int:
        """The server process id of this connection (``pg_stat_activity.pid``)."""
        return int(self._conn.get_server_pid())

    def close(self) -> None:
        """Drop the connection at once (``terminate``: never waits on a dead server)."""
        with contextlib.suppress(*DRIVER_ERRORS):
            self._conn.terminate()


async def notify(db: Database, channel: str, payload: str) -> None:
    """``pg_notify(channel, payload)`` through ``db`` (a pool, or a transaction: then it is
    delivered only when that transaction commits).

    Raises:
        ValueError: ``payload`` is over :data:`MAX_PAYLOAD_BYTES` (a programming error:
            payloads carry ids only).
        storage.errors.StorageError: it was not sent.
    """
    if len(payload.encode()) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"notification payload of {len(payload.encode())} bytes")
    await db.execute("notify_send", channel, payload)
