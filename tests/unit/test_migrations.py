"""Migrations apply cleanly, twice, and "all migrations applied" is the working schema."""

from __future__ import annotations

import asyncpg

from storage.database import Database
from storage.migrate import apply_migrations, migration_files
from tests.support.postgres import clone_database, drop_database, with_database


async def test_migrations_apply_to_an_empty_database_then_are_a_no_op(postgres_admin_dsn):
    conn = await asyncpg.connect(postgres_admin_dsn)
    name = "rw_empty_" + str(id(conn))
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    db = await Database.connect(with_database(postgres_admin_dsn, name), min_size=1, max_size=1)
    try:
        first = await apply_migrations(db)
        assert first == [filename for _, filename, _ in migration_files()]
        assert await apply_migrations(db) == []
        tables = {r["tablename"] for r in await db.fetch("test_list_tables")}
    finally:
        await db.close()
        await drop_database(postgres_admin_dsn, name)
    assert {
        "tenants", "users", "memberships", "published_apps", "app_revisions", "models",
        "model_bindings", "agent_runs", "run_events", "schema_migrations",
    } <= tables  # fmt: skip


async def test_cloned_test_database_is_fully_migrated(postgres_admin_dsn, template_database):
    name = await clone_database(postgres_admin_dsn, template_database)
    db = await Database.connect(with_database(postgres_admin_dsn, name), min_size=1, max_size=1)
    try:
        versions = [r["version"] for r in await db.fetch("test_applied_versions")]
    finally:
        await db.close()
        await drop_database(postgres_admin_dsn, name)
    assert versions == [version for version, _, _ in migration_files()]
