"""A real Postgres for the test session, and cheap per-test databases cloned from a template.

The server is ``DATABASE_URL`` when set, else one embedded pgserver started for the session
in a temporary directory. The migrated template database is built once; each test gets
``CREATE DATABASE <name> TEMPLATE <template>`` (tens of milliseconds) and it is dropped after.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from storage.database import Database
from storage.embedded import EmbeddedPostgres
from storage.migrate import apply_migrations


def with_database(dsn: str, name: str) -> str:
    """``dsn`` pointing at database ``name`` (host, credentials and query kept)."""
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


@contextmanager
def postgres_server() -> Iterator[str]:
    """Yield a DSN of a maintenance database on a running server; stop it if we started it."""
    url = os.environ.get("DATABASE_URL")
    if url:
        yield url
        return
    root = tempfile.mkdtemp(prefix="runwright-test-pg-")
    # pgserver runs postgres as an unprivileged user when we are root: it must reach the dir.
    os.chmod(root, 0o755)
    server = EmbeddedPostgres(root)  # type: ignore[arg-type]
    try:
        yield server.start()
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


async def create_template(admin_dsn: str) -> str:
    """Create and migrate a uniquely named template database; return its name."""
    name = f"rw_tpl_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    db = await Database.connect(with_database(admin_dsn, name), min_size=1, max_size=1)
    try:
        await apply_migrations(db)
    finally:
        await db.close()
    return name


async def clone_database(admin_dsn: str, template: str) -> str:
    """Create a fresh database from ``template``; return its name."""
    name = f"rw_test_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    finally:
        await conn.close()
    return name


async def drop_database(admin_dsn: str, name: str) -> None:
    """Drop ``name``, disconnecting anyone still attached."""
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def run_sync(coro: object) -> object:
    """Run a coroutine on a private loop (session-scoped set-up outside test loops)."""
    return asyncio.run(coro)  # type: ignore[arg-type]
