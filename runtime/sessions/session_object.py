"""The session object of the API, built from a stored ``coding_agent_sessions`` row."""

from __future__ import annotations

from typing import Any

from runtime.runs.events import iso


def session_object(row: dict[str, Any]) -> dict[str, Any]:
    """Serialise a session row: ids as strings, ISO 8601 UTC times."""
    created_by = row["created_by"]
    return {
        "session_id": str(row["id"]),
        "published_app_id": str(row["published_app_id"]),
        "title": row["title"],
        "multitask_strategy": row["multitask_strategy"],
        "run_count": row["run_count"],
        "created_by": str(created_by) if created_by is not None else None,
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
    }
