"""Counts for operators (``GET /metrics``): named queries in ``queries/stats.sql``."""

from __future__ import annotations

import uuid

from storage.database import Database


async def live_run_counts(db: Database) -> list[tuple[str, str, uuid.UUID, int]]:
    """Queued and running runs of every node, grouped.

    Returns:
        ``(status, engine, tenant_id, count)`` rows, ``count`` >= 1.

    Raises:
        StorageError: the database failed (``DatabaseUnavailable`` when unreachable).
    """
    rows = await db.fetch("stats_live_runs")
    return [(r["status"], r["engine"], r["tenant_id"], r["count"]) for r in rows]
