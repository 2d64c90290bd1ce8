"""The asyncpg pool and the error translation at the storage boundary.

Every repository receives a :class:`Database` and runs its named queries through it.
``jsonb`` columns are decoded to Python objects and encoded from them (no manual json calls
in repositories), by :func:`storage.json_encoding.encode`, which stores what Postgres would
refuse (``NaN``, NUL, unpaired surrogates) in a form it accepts.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg

from storage import json_encoding
from storage.errors import (
    DatabaseUnavailable,
    ForeignKeyViolation,
    StatementRefused,
    StorageError,
    UniqueViolation,
)
from storage.sql import q


async def _init_connection(conn: asyncpg.Connection) -> None:
    for typename in ("json", "jsonb"):
        await conn.set_type_codec(
            typename, encoder=json_encoding.encode, decoder=json.loads, schema="pg_catalog"
        )


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Pool ``reset`` hook: nothing to undo beyond what asyncpg always does on release.

    asyncpg still rolls back an open transaction and drops listener callbacks; its default
    reset would also send ``pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL`` —
    one more round trip per query. No query here leaves session state behind (no ``SET``,
    ``LISTEN``, session advisory locks or held cursors; the migration lock is
    transaction-scoped), so that round trip is skipped.
    """


# What a lost or refused connection looks like from asyncpg (the driver has no one base
# class for it): SQLSTATE class 08 (connection exception), 57P01-57P04 (admin/crash
# shutdown, cannot connect now, database dropped: pg_terminate_backend and pg_ctl stop),
# 53300 (too many connections), its client-side state errors (InterfaceError, and
# InternalClientError such as "cannot switch to state 12; another operation is in progress"
# on a connection whose server side was terminated), and socket errors (OSError, which
# includes TimeoutError and the refused connection of a stopped server).
_UNAVAILABLE = (
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.CannotConnectNowError,
    asyncpg.exceptions.DatabaseDroppedError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    OSError,
)

# SQLSTATE classes of a statement refused for its data or its form, which fails the same
# way every time it is sent (PostgreSQL manual, appendix A): 22 data exception (a value out
# of range, text Postgres cannot convert, invalid input syntax), 23 integrity constraint
# violation, 42 syntax error or access rule violation, 54 program limit exceeded (a row or
# array too large). Everything else (08 and 57 connection loss, 40 serialization failure
# or deadlock, 53 resources, 55 lock not available, XX internal) may pass another time.
REFUSED_CLASSES = frozenset({"22", "23", "42", "54"})

# Everything the driver raises, to be translated at this boundary.
DRIVER_ERRORS = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    OSError,
)


def translate(exc: BaseException) -> StorageError:
    """Map an asyncpg/OS error to a storage error (the caller raises it ``from exc``).

    This is the one place that tells an error worth retrying from one that is not:
    :class:`StatementRefused` (and its subclasses) never succeeds when sent again; every
    other :class:`StorageError` may.

    Returns:
        :class:`UniqueViolation`, :class:`ForeignKeyViolation`, :class:`StatementRefused`
        for the rest of :data:`REFUSED_CLASSES` and for a parameter the driver could not
        encode (its client-side ``DataError``; ``reason`` is the driver's class name),
        :class:`DatabaseUnavailable` for every connection-level failure (retry later: the
        statement may or may not have been applied), else :class:`StorageError`.
    """
    if isinstance(exc, asyncpg.UniqueViolationError):
        return UniqueViolation(exc.detail or str(exc), constraint=exc.constraint_name)
    if isinstance(exc, asyncpg.ForeignKeyViolationError):
        return ForeignKeyViolation(exc.detail or str(exc))
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(exc, asyncpg.PostgresError) and str(sqlstate)[:2] in REFUSED_CLASSES:
        return StatementRefused(f"{type(exc).__name__}: {exc}", reason=type(exc).__name__)
    # The driver's own DataError (a parameter it cannot encode) is the one InterfaceError
    # that is also a ValueError; the other InterfaceErrors are a lost connection's.
    if isinstance(exc, asyncpg.InterfaceError) and isinstance(exc, ValueError):
        return StatementRefused(f"{type(exc).__name__}: {exc}", reason=type(exc).__name__)
    if isinstance(exc, _UNAVAILABLE):
        return DatabaseUnavailable(f"{type(exc).__name__}: {exc}")
    return StorageError(str(exc))


@contextlib.asynccontextmanager
async def _opened(conn: asyncpg.Connection, first: str) -> AsyncIterator[None]:
    """A transaction begun together with the script ``first`` (one simple-query round
    trip), committed when the block ends, rolled back when it raises. A rollback that
    cannot be sent (the connection is lost) is left to the pool, which rolls back or drops
    a connection released inside a transaction."""
    await conn.execute(f"BEGIN;\n{first}")
    try:
        yield
    except BaseException:
        if not conn.is_closed():
            with contextlib.suppress(*DRIVER_ERRORS):
                await conn.execute("ROLLBACK")
        raise
    await conn.execute("COMMIT")


class Database:
    """A pool of connections to one Postgres database.

    Use :meth:`connect` to open it and :meth:`close` to release it. Repositories call
    :meth:`fetch`, :meth:`fetchrow`, :meth:`fetchval`, :meth:`execute` with a query *name*
    from ``storage/queries``; :meth:`transaction` yields a connection-bound view for
    multi-statement units.
    """

    def __init__(self, pool: asyncpg.Pool | None = None, conn: Any = None) -> None:
        self._pool = pool
        self._conn = conn

    @classmethod
    async def connect(cls, dsn: str, *, min_size: int = 2, max_size: int = 8) -> Database:
        """Open a pool to ``dsn``.

        Raises:
            DatabaseUnavailable: the server cannot be reached.
        """
        try:
            pool = await asyncpg.create_pool(
                dsn,
                min_size=min_size,
                max_size=max_size,
                init=_init_connection,
                reset=_keep_session,
            )
        except DRIVER_ERRORS as exc:
            raise DatabaseUnavailable(f"cannot connect to Postgres: {exc}") from exc
        return cls(pool=pool)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()

    @contextlib.asynccontextmanager
    async def _acquire(self) -> AsyncIterator[Any]:
        if self._conn is not None:
            yield self._conn
            return
        assert self._pool is not None
        async with self._pool.acquire() as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def transaction(self, first: str | None = None) -> AsyncIterator[Database]:
        """Run the block in one transaction; yields a Database bound to that connection.

        ``first``: a named script without parameters (``SET LOCAL ...``, a lock) that opens
        the transaction, sent with its ``BEGIN`` in one round trip (a status write or a
        claim round is one round trip shorter than with a separate statement).
        """
        if self._conn is not None:
            async with self._conn.transaction():
                if first is not None:
                    await self._conn.execute(q(first))
                yield self
            return
        assert self._pool is not None
        try:
            async with self._pool.acquire() as conn:
                if first is None:
                    async with conn.transaction():
                        yield Database(conn=conn)
                else:
                    async with _opened(conn, q(first)):
                        yield Database(conn=conn)
        except DRIVER_ERRORS as exc:
            raise translate(exc) from exc

    async def _run(self, method: str, name: str, args: tuple[Any, ...]) -> Any:
        sql = q(name)
        # _acquire's steps inlined: this runs for every statement (~10 per scripted run),
        # and the generator-based context manager's own overhead was measurable (issue 10).
        try:
            if self._conn is not None:
                return await getattr(self._conn, method)(sql, *args)
            assert self._pool is not None
            async with self._pool.acquire() as conn:
                return await getattr(conn, method)(sql, *args)
        except DRIVER_ERRORS as exc:
            raise translate(exc) from exc

    async def fetch(self, name: str, *args: Any) -> list[asyncpg.Record]:
        return await self._run("fetch", name, args)  # type: ignore[no-any-return]

    async def fetchrow(self, name: str, *args: Any) -> asyncpg.Record | None:
        return await self._run("fetchrow", name, args)  # type: ignore[no-any-return]

    async def fetchval(self, name: str, *args: Any) -> Any:
        return await self._run("fetchval", name, args)

    async def execute(self, name: str, *args: Any) -> str:
        return await self._run("execute", name, args)  # type: ignore[no-any-return]

    async def execute_raw(self, sql: str) -> None:
        """Run a script of statements (migrations only)."""
        try:
            async with self._acquire() as conn:
                await conn.execute(sql)
        except DRIVER_ERRORS as exc:
            raise translate(exc) from exc
