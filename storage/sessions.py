"""Repository for coding-agent sessions (``coding_agent_sessions``, migration 0012).

A session is an ordered conversation of runs on one app (docs/design.md 10). Rows come
back as plain dicts; every HTTP-facing lookup is scoped by app and tenant.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from storage.database import Database


@dataclass(frozen=True, slots=True)
class ActiveRun:
    """A run of a session that is not over: ``status`` is queued, running or paused."""

    id: uuid.UUID
    status: str
    session_seq: int


class SessionStore:
    """Queries on ``coding_agent_sessions`` and on the runs of a session.

    Use a transaction-bound :class:`Database` (``db.transaction()``) for :meth:`lock`,
    :meth:`active_runs` and :meth:`take_seq`: the lock holds until that transaction ends.
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(
        self,
        *,
        session_id: uuid.UUID,
        tenant_id: uuid.UUID,
        app_id: uuid.UUID,
        created_by: uuid.UUID | None,
        title: str | None,
        multitask_strategy: str,
    ) -> dict[str, Any] | None:
        """Insert a session on the tenant's app; None when the app is not the tenant's."""
        row = await self.db.fetchrow(
            "sessions_insert", session_id, tenant_id, app_id, created_by, title,
            multitask_strategy,
        )  # fmt: skip
        return dict(row) if row is not None else None

    async def get(
        self, session_id: uuid.UUID, app_id: uuid.UUID, tenant_id: uuid.UUID
    ) -> dict[str, Any] | None:
        """The session if it belongs to this app *and* tenant, else None."""
        row = await self.db.fetchrow("sessions_get", session_id, app_id, tenant_id)
        return dict(row) if row is not None else None

    async def list_for_app(
        self, app_id: uuid.UUID, tenant_id: uuid.UUID, limit: int
    ) -> list[dict[str, Any]]:
        """The app's sessions, newest first, at most ``limit``."""
        return [dict(r) for r in await self.db.fetch("sessions_list", app_id, tenant_id, limit)]

    async def lock(
        self, session_id: uuid.UUID, app_id: uuid.UUID, tenant_id: uuid.UUID
    ) -> dict[str, Any] | None:
        """The session, row-locked until the surrounding transaction ends (None: not in
        this app and tenant). Concurrent creates on one session wait here in turn."""
        row = await self.db.fetchrow("sessions_lock", session_id, app_id, tenant_id)
        return dict(row) if row is not None else None

    async def active_runs(self, session_id: uuid.UUID) -> list[ActiveRun]:
        """The session's queued, running and paused runs, in session order."""
        rows = await self.db.fetch("sessions_active_runs", session_id)
        return [ActiveRun(r["id"], r["status"], r["session_seq"]) for r in rows]

    async def take_seq(self, session_id: uuid.UUID) -> int:
        """Count one more run in the session; returns its ``session_seq`` (1, 2, ...)."""
        seq = await self.db.fetchval("sessions_take_seq", session_id)
        assert seq is not None
        return int(seq)

    async def runs(self, session_id: uuid.UUID) -> list[dict[str, Any]]:
        """Every run of the session, in session order."""
        return [dict(r) for r in await self.db.fetch("sessions_runs", session_id)]

    async def earlier_turns(self, session_id: uuid.UUID, seq: int) -> list[list[dict[str, Any]]]:
        """The turns the session's runs before ``seq`` contributed, in session order (runs
        that contributed nothing are left out)."""
        rows = await self.db.fetch("sessions_earlier_turns", session_id, seq)
        return [list(r["session_turns"]) for r in rows]
