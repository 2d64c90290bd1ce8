"""Idempotency keys of run creation (``run_idempotency_keys``, migration 0005).

The IETF httpapi draft "The Idempotency-Key HTTP Header Field": a client that repeats a
create with the same key gets the first response again instead of a second run. The key is
scoped to (tenant, app, principal); the run and its key row are inserted by one statement,
so concurrent duplicates create exactly one run (the primary key decides).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from storage.database import Database
from storage.errors import StorageError


class IdempotencyKeyTaken(StorageError):
    """The idempotency key is already bound to a live run; nothing was inserted.

    ``stored``: its entry when the creation read found it (the create stopped there), None
    when the insert found it taken (read it with :func:`lookup`).
    """

    def __init__(self, key: str, stored: StoredKey | None) -> None:
        super().__init__(key)
        self.stored = stored


@dataclass(frozen=True, slots=True)
class IdempotencyKey:
    """Who asked, with which key, for which request.

    Attributes:
        tenant_id: the tenant of the request.
        app_id: the app the run is created on.
        principal: the caller, e.g. ``"user:<uuid>"`` (keys never collide across callers).
        key: the ``Idempotency-Key`` value (1-255 printable ASCII characters).
        fingerprint: a digest of the request body; the same key with another body is refused.
        ttl_seconds: how long the key stays bound to its run.
    """

    tenant_id: uuid.UUID
    app_id: uuid.UUID
    principal: str
    key: str
    fingerprint: str
    ttl_seconds: float

    @property
    def scope(self) -> tuple[uuid.UUID, uuid.UUID, str, str]:
        """The primary key of its row."""
        return (self.tenant_id, self.app_id, self.principal, self.key)


@dataclass(frozen=True, slots=True)
class StoredKey:
    """A live key: the request it was first used with and the response then sent.

    ``response`` is never None: the row and the response are written by one statement
    (``runs_insert_keyed``).
    """

    fingerprint: str
    run_id: uuid.UUID
    response: Any


async def lookup(db: Database, key: IdempotencyKey) -> StoredKey | None:
    """The unexpired entry of ``key``'s scope, or None."""
    row = await db.fetchrow("idempotency_get", *key.scope)
    if row is None:
        return None
    return StoredKey(row["fingerprint"], row["run_id"], row["response"])


async def sweep(db: Database, *, batch: int = 1000) -> int:
    """Delete expired keys, ``batch`` rows per statement; returns how many were deleted."""
    total = 0
    while True:
        status = await db.execute("idempotency_sweep", batch)
        deleted = int(status.split()[-1])
        total += deleted
        if deleted < batch:
            return total
