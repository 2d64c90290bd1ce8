"""Repository for completion webhooks (migration 0011): tenant signing secrets and the
delivery outbox (``webhook_deliveries``).

Outbox rows are written inside the run status writes themselves (the trigger
``agent_runs_queue_webhook`` of migration 0011); this module claims, settles and lists them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from storage.database import Database
from storage.records import from_record, maybe, returned


@dataclass(frozen=True, slots=True)
class SecretInfo:
    """A tenant's webhook secret, without the secret: ``version`` counts rotations (1 for
    the first), ``created_at`` is when the current one was made."""

    tenant_id: uuid.UUID
    version: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class SealedSecret:
    """A tenant's webhook secret as stored (open it with the server's secret box)."""

    tenant_id: uuid.UUID
    secret_ciphertext: bytes
    version: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    """One delivery claimed for one attempt.

    Attributes:
        id: the delivery id (the same on every attempt).
        run: the run row as the status write left it (JSON types: ids and times are
            strings).
        attempts: this attempt's number (1 for the first); it fences the outcome write.
        secret_ciphertext: the tenant's sealed secret; None when the tenant has none.
    """

    id: uuid.UUID
    tenant_id: uuid.UUID
    run_id: uuid.UUID
    url: str
    event: str
    run: dict[str, Any]
    attempts: int
    created_at: datetime
    secret_ciphertext: bytes | None


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """A delivery as a run's owner may read it (no secret, no body)."""

    id: uuid.UUID
    run_id: uuid.UUID
    url: str
    event: str
    state: str
    attempts: int
    next_attempt_at: datetime
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


class WebhookStore:
    """Queries on ``tenant_webhook_secrets`` and ``webhook_deliveries``."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def set_secret(self, tenant_id: uuid.UUID, sealed: bytes) -> SecretInfo:
        """Store the tenant's (new) sealed secret, replacing any earlier one.

        Raises:
            storage.errors.ForeignKeyViolation: no such tenant.
        """
        return returned(SecretInfo, await self.db.fetchrow("webhook_secret_set", tenant_id, sealed))

    async def get_secret(self, tenant_id: uuid.UUID) -> SealedSecret | None:
        """The tenant's sealed secret, or None when it has none."""
        return maybe(SealedSecret, await self.db.fetchrow("webhook_secret_get", tenant_id))

    async def claim(
        self, limit: int, lease_seconds: float, *, tenant_cap: int
    ) -> list[ClaimedDelivery]:
        """Claim up to ``limit`` due deliveries for one attempt each, tenants taking turns
        (docs/architecture.md "Webhook outbox"): a tenant's k-th due delivery waits behind
        every tenant with fewer than k attempts in flight or due ahead of it, and at most
        ``tenant_cap`` attempts of one tenant are in flight across all nodes. Claims of all
        nodes are serialised by a transaction-scoped advisory lock so the caps are counted
        exactly; ``FOR UPDATE SKIP LOCKED`` passes over rows being settled right now. None
        of the claimed rows is due again for ``lease_seconds``.

        Raises:
            storage.errors.StorageError: nothing was claimed (the lock was not had within
                2 s, the database is down), or the answer was lost (the rows' leases then
                lapse and they are attempted again: at least once).
        """
        if limit <= 0:
            return []
        async with self.db.transaction("webhooks_claim_lock") as tx:
            rows = await tx.fetch("webhooks_claim", limit, float(lease_seconds), tenant_cap)
        return [from_record(ClaimedDelivery, r) for r in rows]

    async def delivered(self, delivery_id: uuid.UUID, attempt: int, status_code: int) -> None:
        """Record that attempt ``attempt`` was accepted (a 2xx)."""
        await self.db.execute("webhooks_delivered", delivery_id, attempt, status_code)

    async def retry(
        self,
        delivery_id: uuid.UUID,
        attempt: int,
        *,
        delay_seconds: float,
        status_code: int | None,
        error: str,
    ) -> None:
        """Record a failed attempt and when the next one is due."""
        await self.db.execute(
            "webhooks_retry", delivery_id, attempt, float(delay_seconds), status_code, error
        )

    async def failed(
        self, delivery_id: uuid.UUID, attempt: int, *, status_code: int | None, error: str
    ) -> None:
        """Give the delivery up after its last attempt."""
        await self.db.execute("webhooks_failed", delivery_id, attempt, status_code, error)

    async def list_for_run(self, run_id: uuid.UUID, tenant_id: uuid.UUID) -> list[DeliveryRecord]:
        """The run's deliveries, oldest first (empty for another tenant's run)."""
        rows = await self.db.fetch("webhooks_list_for_run", run_id, tenant_id)
        return [from_record(DeliveryRecord, r) for r in rows]
