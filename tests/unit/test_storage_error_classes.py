"""The one classification of driver errors (storage.database.translate): a statement Postgres
refuses for its data or form is StatementRefused (never retried: the event writer isolates
it, a status write fails the run); a lost connection is DatabaseUnavailable (retried).
Every error here is raised by a real Postgres."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from runtime.runs.actor import is_transient
from storage.database import translate
from storage.errors import (
    DatabaseUnavailable,
    ForeignKeyViolation,
    StatementRefused,
    StorageError,
    UniqueViolation,
)


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(database_url)
    try:
        yield connection
    finally:
        await connection.close()


async def _error(conn: asyncpg.Connection, sql: str, *args: object) -> StorageError:
    with pytest.raises(Exception) as caught:  # noqa: PT011 - classified below
        await conn.fetchval(sql, *args)
    return translate(caught.value)


@pytest.mark.parametrize(
    ("sql", "args", "reason"),
    [
        # \u0000 cannot be converted to text (events_turn_text before NUL was replaced)
        ("""SELECT '{"a": "\\u0000"}'::json->>'a'""", (), "UntranslatableCharacterError"),
        ("SELECT 'x'::int", (), "InvalidTextRepresentationError"),
        ("SELECT 2147483647::int + 1", (), "NumericValueOutOfRangeError"),
        ("SELECT convert_from('\\x00'::bytea, 'UTF8')", (), "CharacterNotInRepertoireError"),
        ("SELECT no_such_column FROM agent_runs", (), "UndefinedColumnError"),
        ("CREATE TEMP TABLE t (v int CHECK (v > 0)); INSERT INTO t VALUES (0)", None,
         "CheckViolationError"),
        ("SELECT $1::int", ("not a number",), "DataError"),  # the driver cannot encode it
    ],
    ids=["nul-to-text", "text-repr", "out-of-range", "repertoire", "undefined", "check",
         "client-encode"],
)  # fmt: skip
async def test_data_and_statement_errors_are_refused_not_retried(
    conn: asyncpg.Connection, sql: str, args: tuple[object, ...] | None, reason: str
) -> None:
    if args is None:  # a script (no parameters): execute
        with pytest.raises(Exception) as caught:  # noqa: PT011
            await conn.execute(sql)
        error = translate(caught.value)
    else:
        error = await _error(conn, sql, *args)
    assert isinstance(error, StatementRefused), error
    assert error.reason == reason
    assert not is_transient(error)


async def test_constraint_violations_keep_their_own_classes(conn: asyncpg.Connection) -> None:
    await conn.execute(
        "CREATE TEMP TABLE p (id int PRIMARY KEY);"
        "CREATE TEMP TABLE c (p int REFERENCES p(id)); INSERT INTO p VALUES (1)"
    )
    unique = await _error(conn, "INSERT INTO p VALUES (1)")
    foreign = await _error(conn, "INSERT INTO c VALUES (2)")
    assert isinstance(unique, UniqueViolation) and isinstance(unique, StatementRefused)
    assert isinstance(foreign, ForeignKeyViolation) and isinstance(foreign, StatementRefused)
    assert not is_transient(unique) and not is_transient(foreign)


async def test_a_lost_connection_is_unavailable_and_retried(
    conn: asyncpg.Connection, database_url: str
) -> None:
    pid = await conn.fetchval("SELECT pg_backend_pid()")
    other = await asyncpg.connect(database_url)
    try:
        await other.execute("SELECT pg_terminate_backend($1)", pid)
    finally:
        await other.close()
    error = await _error(conn, "SELECT 1")
    assert isinstance(error, DatabaseUnavailable)
    assert not isinstance(error, StatementRefused)
    assert is_transient(error)
