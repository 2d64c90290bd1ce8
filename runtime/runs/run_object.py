"""The run object of the wire contract (contract 1.1), built from a stored run row."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from runtime import approvals
from runtime.runs.events import iso
from runtime.tools.selection import run_selection
from runtime.usage import usage_object

KNOWN_ENGINES = frozenset({"native", "opencode", "scripted"})


def _id(value: Any) -> str | None:
    return str(value) if value is not None else None


def _ts(value: datetime | None) -> str | None:
    return iso(value) if value is not None else None


def run_object(row: dict[str, Any]) -> dict[str, Any]:
    """Serialise a run row: every contract 1.1 field, ids as strings, ISO 8601 UTC times,
    plus ``session_id``, ``usage`` and the additive approval fields."""
    engine = row["execution_engine"]
    return {
        "run_id": str(row["id"]),
        "status": row["status"],
        "execution_engine": engine if engine in KNOWN_ENGINES else "native",
        "surface": row["surface"],
        "published_app_id": _id(row["published_app_id"]),
        "base_revision_id": _id(row["base_revision_id"]),
        "result_revision_id": _id(row["result_revision_id"]),
        "checkpoint_revision_id": _id(row["checkpoint_revision_id"]),
        "requested_model_id": _id(row["requested_model_id"]),
        "resolved_model_id": _id(row["resolved_model_id"]),
        "error": row["error_message"],
        "created_at": _ts(row["created_at"]),
        "started_at": _ts(row["started_at"]),
        "completed_at": _ts(row["completed_at"]),
        # Additive (docs/design.md 10): the coding-agent session the run belongs to, or null.
        "session_id": _id(row.get("session_id")),
        # Additive (issue 12 item 3): tokens and wall time so far (runtime/usage.py).
        "usage": usage_object(row),
        # Additive (issue 12): which tool calls wait for a person, and the one waiting now.
        "approval_policy": approvals.run_policy(row.get("input_params") or {}),
        "pending_approval": _pending_approval(row),
        # Additive (issue 13): the tools a native run offers its model, null for all.
        "tools": _tools(row),
    }


def _tools(row: dict[str, Any]) -> list[str] | None:
    selection = run_selection(row.get("input_params") or {})
    return None if selection is None else list(selection)


def _pending_approval(row: dict[str, Any]) -> dict[str, Any] | None:
    """The approval request a paused run waits on (as ``approval.requested`` carried it,
    plus ``expires_at``), or None."""
    pending = approvals.pending_of(row.get("checkpoint")) if row["status"] == "paused" else None
    if pending is None:
        return None
    return {**pending, "expires_at": _ts(row.get("approval_expires_at"))}


def checkpoint_object(row: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint item derived from a run (contract 1.8)."""
    return {
        "checkpoint_id": str(row["checkpoint_revision_id"]),
        "run_id": str(row["id"]),
        "app_id": str(row["published_app_id"]),
        "revision_id": _id(row["result_revision_id"]),
        "created_at": _ts(row["completed_at"] or row["created_at"]),
    }
