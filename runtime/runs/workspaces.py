"""Which workspace a run works in, for the Supervisor's one-run-per-workspace rule."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from runtime.engine import Engine

WorkspaceKey = tuple[uuid.UUID, uuid.UUID | None]


def workspace_key(engines: Mapping[str, Engine], row: dict[str, Any]) -> WorkspaceKey | None:
    """The (app, user) workspace of a run whose engine uses one (contract 8: one workspace
    per app and user), else None. Two runs in one workspace would edit each other's files,
    so the Supervisor executes one run per workspace at a time."""
    engine = engines.get(row["execution_engine"])
    if engine is None or not engine.uses_workspace:
        return None
    return (row["published_app_id"], row["user_id"])
