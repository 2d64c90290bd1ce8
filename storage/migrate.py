"""Numbered ``.sql`` migrations, applied in order, each in its own transaction.

Applied versions are tracked in ``schema_migrations``; applying twice is a no-op. An advisory
lock serialises concurrent appliers (two processes starting at once).
"""

from __future__ import annotations

import re
from importlib import resources

from storage.database import Database
from storage.errors import MigrationError, StorageError

_FILE = re.compile(r"^(\d{4})_[\w-]+\.sql$")


def migration_files() -> list[tuple[int, str, str]]:
    """Return ``[(version, filename, sql)]`` sorted by version."""
    found = []
    for entry in resources.files("storage").joinpath("migrations").iterdir():
        m = _FILE.match(entry.name)
        if m:
            found.append((int(m.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


async def apply_migrations(db: Database) -> list[str]:
    """Apply every pending migration; return the file names applied now.

    Raises:
        MigrationError: a migration failed; it was rolled back and later ones not tried.
    """
    applied_now: list[str] = []
    for version, name, sql in migration_files():
        try:
            async with db.transaction() as tx:
                await tx.execute("migrations_lock")
                await tx.execute("migrations_create_table")
                if await tx.fetchval("migrations_is_applied", version):
                    continue
                await tx.execute_raw(sql)
                await tx.execute("migrations_record", version, name)
        except StorageError as exc:
            raise MigrationError(f"migration {name} failed: {exc}") from exc
        applied_now.append(name)
    return applied_now
