"""Typed views of the API's JSON (pydantic v2). Unknown fields are ignored, so a newer
server that adds fields does not break an older client.

Shapes follow the server's OpenAPI document (``/openapi.json``): the run object (contract
1.1), the event envelope (contract 3), apps, revisions and the stream ticket.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

RunStatus = Literal["queued", "running", "completed", "failed", "cancelled", "paused"]
TERMINAL_EVENTS = frozenset({"run.completed", "run.failed"})


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class RunUsage(_Model):
    """What a run used so far; token counts are null until the model reported them."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    model_calls: int = 0
    model_calls_without_usage: int = 0
    model_seconds: float = 0.0
    tool_calls: int = 0
    tool_seconds: float = 0.0


class Run(_Model):
    """A coding-agent run (``GET .../runs/{run_id}``)."""

    run_id: uuid.UUID
    status: RunStatus
    execution_engine: str
    surface: str
    published_app_id: uuid.UUID | None
    base_revision_id: uuid.UUID | None
    result_revision_id: uuid.UUID | None
    checkpoint_revision_id: uuid.UUID | None
    requested_model_id: uuid.UUID | None
    resolved_model_id: uuid.UUID | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    usage: RunUsage | None = None
    #: Which tool calls wait for a person (servers without approvals: absent, ``none``).
    approval_policy: str = "none"
    #: The request a paused run waits on: ``{request_id, tool, arguments, editable,
    #: expires_at}``; resume it with ``resume_run(..., approval={...})``.
    pending_approval: dict[str, Any] | None = None

    @property
    def finished(self) -> bool:
        """True once the run can change no more (``paused`` is not finished)."""
        return self.status in ("completed", "failed", "cancelled")


class RunEvent(_Model):
    """One event of a run's stream (contract 3): ``seq`` is 1-based, gap-free, per run."""

    event: str
    run_id: uuid.UUID
    app_id: uuid.UUID | None = None
    seq: int
    ts: datetime
    stage: str | None = None
    payload: dict[str, Any] = Field(default_factory=dict)
    diagnostics: list[dict[str, Any]] = Field(default_factory=list)

    @property
    def terminal(self) -> bool:
        """``run.completed`` or ``run.failed``: the stream ends after it."""
        return self.event in TERMINAL_EVENTS


class App(_Model):
    """A published app (``POST /admin/apps``)."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    name: str
    slug: str
    template_key: str
    status: str
    current_draft_revision_id: uuid.UUID | None
    created_at: datetime


class Revision(_Model):
    """An immutable snapshot of an app's files."""

    id: uuid.UUID
    published_app_id: uuid.UUID
    kind: str
    entry_file: str
    files: dict[str, str]
    build_seq: int
    source_revision_id: uuid.UUID | None
    created_at: datetime


class BuilderState(_Model):
    """``GET /admin/apps/{app_id}/builder/state``."""

    app: App
    current_draft_revision: Revision | None
    current_published_revision: Revision | None


class StreamTicket(_Model):
    """A short-lived, read-only credential for one run's stream (for browsers' EventSource,
    which cannot send an ``Authorization`` header)."""

    ticket: str
    expires_at: datetime
    stream_url: str
