"""Pages of coding-agent runs for the list routes (issue 12 item 4), keyset on
``(created_at, id)``.

A page is the runs strictly between two :data:`Position` bounds, in one direction: newest
first (``older`` pages, what a list shows) or oldest first (``newer`` pages, read when
paging back). Runs created while a client pages sort above every page it has seen (their
``created_at`` is later), so walking a list never skips or repeats a run. The queries live
in ``storage/queries/run_pages.sql``; the indexes in migration 0010.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from storage.database import Database
from storage.runs import SURFACE

Position = tuple[datetime, uuid.UUID]
"""A place in the order of runs: ``(created_at, id)``."""

_MIN_ID = uuid.UUID(int=0)
_MAX_ID = uuid.UUID(int=2**128 - 1)

LOWEST: Position = (datetime(1, 1, 1, tzinfo=UTC), _MIN_ID)
"""Below every run."""
HIGHEST: Position = (datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), _MAX_ID)
"""Above every run."""


def before(ts: datetime) -> Position:
    """The bound "created before ``ts``" as an upper position (exclusive)."""
    return (ts, _MIN_ID)


def after(ts: datetime) -> Position:
    """The bound "created after ``ts``" as a lower position (exclusive)."""
    return (ts, _MAX_ID)


@dataclass(frozen=True, slots=True)
class RunFilter:
    """What a page is restricted to, besides its bounds.

    Attributes:
        tenant_id: always; a page never holds another tenant's run.
        app_id: one app's runs; None: every app of the tenant.
        statuses: any of these statuses; None: any status.
        engines: any of these stored ``execution_engine`` values; None: any.
        session_id: only this coding-agent session's runs; None: any.
    """

    tenant_id: uuid.UUID
    app_id: uuid.UUID | None = None
    statuses: Sequence[str] | None = None
    engines: Sequence[str] | None = None
    session_id: uuid.UUID | None = None


async def page(
    db: Database,
    where: RunFilter,
    *,
    above: Position,
    below: Position,
    limit: int,
    newest_first: bool,
) -> list[dict[str, Any]]:
    """At most ``limit`` runs matching ``where`` with ``above < (created_at, id) < below``,
    newest first when ``newest_first`` (else oldest first), as row dicts."""
    direction = "older" if newest_first else "newer"
    statuses = list(where.statuses) if where.statuses is not None else None
    engines = list(where.engines) if where.engines is not None else None
    rest = (statuses, engines, where.session_id, *below, *above, limit)
    if where.app_id is not None:
        rows = await db.fetch(
            f"run_pages_app_{direction}", where.app_id, where.tenant_id, SURFACE, *rest
        )
    else:
        rows = await db.fetch(f"run_pages_tenant_{direction}", where.tenant_id, SURFACE, *rest)
    return [dict(r) for r in rows]
