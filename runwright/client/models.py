"""Typed views of the API's JSON (pydantic v2). Unknown fields are ignored, so a newer
server that adds fields does not break an older client.

Shapes follow the server's OpenAPI document (``/openapi.json``): the run object (contract
1.1), the event envelope (contract 3), apps, revisions, the stream ticket, a page of a run
list, sessions, usage and webhooks.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

RunStatus = Literal["queued", "running", "completed", "failed", "cancelled", "paused"]
RunEngine = Literal["native", "opencode", "scripted"]
MultitaskStrategy = Literal["reject", "enqueue", "interrupt", "rollback"]
ApprovalPolicy = Literal["none", "commands", "patches", "all"]
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


class PendingApproval(_Model):
    """A tool call a paused run waits on (as its ``approval.requested`` event carried it);
    decide it with ``approve()`` or ``reject()``."""

    request_id: str
    #: Native: ``coding_agent_*``; OpenCode: its permission name, e.g. ``bash``.
    tool: str
    #: The call's arguments as the model gave them.
    arguments: Any = None
    #: Whether an approval may replace the arguments (OpenCode's may not).
    editable: bool = True
    #: When the run fails closed without a decision (None: no timeout).
    expires_at: datetime | None = None


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
    #: The coding-agent session the run belongs to (None: a one-shot run).
    session_id: uuid.UUID | None = None
    #: Which tool calls wait for a person (servers without approvals: absent, ``none``).
    approval_policy: str = "none"
    #: The request a paused run waits on; decide it with ``approve()`` / ``reject()``.
    pending_approval: PendingApproval | None = None
    #: The tools a native run offers its model (``create_run(tools=...)``); None: all.
    tools: list[str] | None = None

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


class RunPage(_Model):
    """One page of a run list, newest first, with the cursors of its neighbours (the
    ``Runwright-Next-Cursor`` / ``Runwright-Prev-Cursor`` headers)."""

    runs: list[Run]
    #: Pass as ``cursor`` for the next page (older runs); None on the last page.
    next_cursor: str | None = None
    #: Pass as ``cursor`` for the previous page (newer runs); None on the first page.
    prev_cursor: str | None = None


class Session(_Model):
    """A coding-agent session: an ordered conversation of runs on one app. Runs join it
    with ``create_run(..., session_id=...)``."""

    session_id: uuid.UUID
    published_app_id: uuid.UUID
    title: str | None
    #: What a run create does while a run of the session is active (unless it names its own).
    multitask_strategy: MultitaskStrategy
    run_count: int
    created_by: uuid.UUID | None
    created_at: datetime
    #: When the session's last run was created.
    updated_at: datetime


class SessionDetail(Session):
    """A session with its runs in session order (the oldest first)."""

    runs: list[Run]


class UsageTotals(_Model):
    """Sums over the model and tool calls of a range. Token sums cover the calls whose
    model reported them (None when none did; never estimated)."""

    prompt_tokens: int | None
    completion_tokens: int | None
    total_tokens: int | None
    model_calls: int
    model_calls_without_usage: int
    model_seconds: float
    tool_calls: int
    tool_seconds: float
    #: Runs with at least one call in the range.
    runs: int


class AppUsage(UsageTotals):
    """One app's sums (``app_id`` None: a deleted app's runs)."""

    app_id: uuid.UUID | None


class ModelUsage(UsageTotals):
    """One registry model's sums (``model_id`` None: a deleted model)."""

    model_id: uuid.UUID | None
    model_name: str | None


class Usage(_Model):
    """``GET /admin/usage``: the tenant's usage over ``[start, end)`` (the API's ``from`` and
    ``to``), by when each call ended."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    tenant_id: uuid.UUID
    start: datetime = Field(alias="from")
    end: datetime = Field(alias="to")
    totals: UsageTotals
    by_app: list[AppUsage]
    by_model: list[ModelUsage]


class AgentSettings(_Model):
    """An app's coding-agent settings: the default approval policy of its new runs."""

    approval_policy: ApprovalPolicy


class WebhookSecret(_Model):
    """A new webhook signing secret: shown only in this answer; store it now."""

    secret: str
    version: int
    created_at: datetime


class WebhookSecretInfo(_Model):
    """Whether the tenant has a webhook secret (never the secret itself)."""

    configured: bool
    version: int | None
    created_at: datetime | None


class WebhookDelivery(_Model):
    """One delivery of a run's webhook (one per terminal or paused status)."""

    delivery_id: uuid.UUID
    run_id: uuid.UUID
    url: str
    event: str
    state: Literal["pending", "delivered", "failed"]
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
