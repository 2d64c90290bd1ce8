"""Usage totals of a tenant over a time range (issue 12 item 3), from ``run_usage``
(migration 0010; rows are written with the run's sums by ``RunStore.record_usage``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from storage.database import Database


@dataclass(frozen=True, slots=True)
class TenantUsage:
    """The sums of one tenant's calls that ended in a range.

    Attributes:
        total: the whole tenant's sums (``prompt_tokens``, ``completion_tokens``,
            ``total_tokens`` (None when no call reported them), ``model_calls``,
            ``model_calls_unreported``, ``model_ms``, ``tool_calls``, ``tool_ms``, ``runs``).
        by_app: the same per app (``app_id``), apps in id order.
        by_model: the same per registry model (``model_id``, ``model_name``; None for a
            deleted model), in id order.
    """

    total: dict[str, Any]
    by_app: list[dict[str, Any]] = field(default_factory=list)
    by_model: list[dict[str, Any]] = field(default_factory=list)


async def tenant_usage(
    db: Database, tenant_id: uuid.UUID, start: datetime, end: datetime
) -> TenantUsage:
    """Sums of ``tenant_id``'s calls that ended in ``[start, end)``; only that tenant's."""
    rows = [dict(r) for r in await db.fetch("usage_tenant_totals", tenant_id, start, end)]
    total = next((r for r in rows if r["grouping"] == 3), None)
    return TenantUsage(
        total=total or _empty(),
        by_app=[r for r in rows if r["grouping"] == 1],
        by_model=[r for r in rows if r["grouping"] == 2],
    )


def _empty() -> dict[str, Any]:
    return {
        "prompt_tokens": None, "completion_tokens": None, "total_tokens": None,
        "model_calls": 0, "model_calls_unreported": 0, "model_ms": 0, "tool_calls": 0,
        "tool_ms": 0, "runs": 0,
    }  # fmt: skip
