"""Request and response models of the coding-agent run routes (contract 1.1-1.9)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from runtime.runs.resume_keys import FIELD as RESUME_KEYS_FIELD
from web.schemas.apps import RevisionResponse
from web.schemas.common import NoBool, UtcDatetime
from web.stream_tickets import MAX_TICKET_CHARS

MultitaskStrategy = Literal["reject", "enqueue", "interrupt", "rollback"]

# Input bounds (issue 9 item 5). The whole body is also capped (Quart's MAX_CONTENT_LENGTH).
MAX_INPUT_CHARS = 100_000
MAX_MESSAGES = 500
MAX_APPROVAL_TIMEOUT_SECONDS = 30 * 86400
MAX_APPROVAL_MESSAGE_CHARS = 10_000
MAX_WEBHOOK_URL_CHARS = 2048
MAX_TOOLS = 64
MAX_TOOL_NAME_CHARS = 100


class CreateRunRequest(BaseModel):
    """``POST /admin/apps/{app_id}/coding-agent/runs`` (contract 1.2)."""

    model_config = ConfigDict(extra="ignore")

    input: str = Field(
        max_length=MAX_INPUT_CHARS,
        description="The prompt. Blank after stripping -> 400 'input is required'.",
    )
    base_revision_id: uuid.UUID | None = Field(
        default=None,
        description="The client's current draft id; a stale one -> 409 REVISION_CONFLICT.",
    )
    messages: list[dict[str, str]] | None = Field(
        default=None,
        max_length=MAX_MESSAGES,
        description="Earlier turns `{role, content}`; normalised (contract 5).",
    )
    model_id: uuid.UUID | None = Field(default=None, description="Registry model; null = auto.")
    engine: Literal["native", "opencode", "scripted"] = Field(
        default="native",
        description="Execution engine. `scripted` exists only when the server enables it.",
    )
    script: list[dict[str, Any]] | None = Field(
        default=None, description="Steps for the `scripted` engine (tests and benchmarks)."
    )
    approval_policy: Literal["none", "commands", "patches", "all"] | None = Field(
        default=None,
        description=(
            "Which tool calls wait for a person before they run: `commands` (tools that run "
            "commands), `patches` (tools that write files), `all`, `none`. Null: the app's "
            "default (PUT .../coding-agent/settings; `none` unless set). A call that needs "
            "approval pauses the run (`approval.requested`); POST .../resume decides it."
        ),
    )
    approval_timeout_seconds: Annotated[float | None, NoBool] = Field(
        default=None,
        ge=1,
        le=MAX_APPROVAL_TIMEOUT_SECONDS,
        description=(
            "Seconds a pause on an approval request may last before the run fails closed "
            "(APPROVAL_TIMEOUT). Null: RUNWRIGHT_APPROVAL_TIMEOUT_SECONDS."
        ),
    )
    session_id: uuid.UUID | None = Field(
        default=None,
        description=(
            "Continue this coding-agent session of the app: the model sees the session's "
            "earlier turns and the run starts from the session's latest result. Not a "
            "session of this app and tenant -> 404 'Coding-agent session not found'."
        ),
    )
    multitask_strategy: MultitaskStrategy | None = Field(
        default=None,
        description=(
            "With `session_id`: what to do while a run of the session is queued, running or "
            "paused (default: the session's strategy). `reject` -> 409 SESSION_BUSY; "
            "`enqueue`: start when the runs before it ended, in order; `interrupt`: cancel "
            "them (verified), keeping their work, then start; `rollback`: as interrupt, "
            "their work discarded (no revision). Without `session_id` -> 422."
        ),
    )
    tools: list[Annotated[str, Field(max_length=MAX_TOOL_NAME_CHARS)]] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_TOOLS,
        description=(
            "Native engine only: the toolpack tools this run offers its model, by slug "
            "(`read_file_range`) or function name (`coding_agent_read_file_range`); a call "
            "of any other tool is answered `TOOL_NOT_ALLOWED` without running. Null: all "
            "tools. An unknown name, or `tools` with another engine -> 422. A small model "
            "does far better with few tools (docs/local-model.md)."
        ),
    )
    webhook: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_WEBHOOK_URL_CHARS,
        description=(
            "An http(s) URL that gets the run object POSTed, signed with the tenant's "
            "webhook secret, when the run ends (completed, failed, cancelled) or pauses. "
            "Needs a secret (POST /admin/webhooks/secret); subject to the server's egress "
            "policy (422 when refused). README 'Webhooks'."
        ),
    )

    @field_validator("webhook")
    @classmethod
    def _webhook_url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        parts = urlsplit(value)
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or any(c.isspace() or ord(c) < 0x20 for c in value)
        ):
            raise ValueError("webhook must be an absolute http or https URL")
        try:
            port = parts.port  # ValueError past 65535 or when not a number
        except ValueError:
            port = 0
        if port == 0:
            raise ValueError("webhook port must be 1..65535")
        return value


class RunUsage(BaseModel):
    """What a run used so far (issue 12 item 3). Token counts are the model endpoint's own
    (``stream_options.include_usage``); null until a call reported one, never estimated."""

    prompt_tokens: int | None = Field(description="Sum over model calls that reported it.")
    completion_tokens: int | None = Field(description="Sum over model calls that reported it.")
    total_tokens: int | None = Field(description="Sum over model calls that reported it.")
    model_calls: int = Field(description="Model requests that completed.")
    model_calls_without_usage: int = Field(
        description="Of those, the ones whose endpoint reported no token counts (left out "
        "of the sums)."
    )
    model_seconds: float = Field(description="Wall time of those requests, where known.")
    tool_calls: int = Field(description="Tool calls (commands included) that ended.")
    tool_seconds: float = Field(description="Their wall time.")


class PendingApproval(BaseModel):
    """A tool call waiting for a person's decision (as ``approval.requested`` carried it)."""

    request_id: str = Field(description="Name it in POST .../resume's approval.")
    tool: str
    arguments: Any = Field(description="The call's arguments as the model gave them.")
    editable: bool = Field(description="Whether approval.arguments may replace them.")
    expires_at: str | None = Field(description="When the run fails closed without a decision.")


class RunResponse(BaseModel):
    """The run object (contract 1.1); datetimes ISO 8601 UTC, nullable fields as null."""

    run_id: str
    status: Literal["queued", "running", "completed", "failed", "cancelled", "paused"]
    execution_engine: str
    surface: str
    published_app_id: str | None
    base_revision_id: str | None
    result_revision_id: str | None
    checkpoint_revision_id: str | None
    requested_model_id: str | None
    resolved_model_id: str | None
    error: str | None
    created_at: str
    started_at: str | None
    completed_at: str | None
    session_id: str | None = Field(description="The run's coding-agent session, or null.")
    usage: RunUsage
    approval_policy: Literal["none", "commands", "patches", "all"] = Field(
        description="Which tool calls wait for a person (additive; issue 12)."
    )
    pending_approval: PendingApproval | None = Field(
        description="The request a paused run waits on; null otherwise (additive)."
    )
    tools: list[str] | None = Field(
        default=None,
        description="The tools a native run offers its model (create field `tools`); null: all.",
    )


class ListQuery(BaseModel):
    """``?limit=`` of the list routes: 1..100, default 25."""

    limit: int = Field(default=25, ge=1, le=100)


# Event seqs are stored as Postgres ``integer``; a larger cursor is a 422, not a broken stream.
MAX_SEQ = 2**31 - 1


class StreamQuery(BaseModel):
    """``?after=<seq>``: resume after that event (the ``Last-Event-ID`` header wins).
    ``?ticket=``: a stream ticket instead of the ``Authorization`` header (browsers)."""

    after: int = Field(default=0, ge=0, le=MAX_SEQ)
    ticket: str | None = Field(
        default=None,
        max_length=MAX_TICKET_CHARS,
        description="From POST .../stream-ticket; read-only, this run only, short-lived.",
    )


class StreamTicketResponse(BaseModel):
    """``POST .../runs/{run_id}/stream-ticket``: a credential for this run's stream only."""

    ticket: str = Field(description="Pass as ?ticket= to the stream (EventSource).")
    expires_at: UtcDatetime = Field(
        description="After this the ticket opens no new stream; an open stream goes on."
    )
    stream_url: str = Field(description="The stream's path with the ticket, ready to open.")


class StreamHeaders(BaseModel):
    """``Last-Event-ID``: resume after that seq (what EventSource sends on reconnect)."""

    model_config = ConfigDict(populate_by_name=True)

    last_event_id: int | None = Field(default=None, alias="Last-Event-ID", ge=0, le=MAX_SEQ)


class CreateRunHeaders(BaseModel):
    """Optional headers of run creation (documentation only; the route validates them)."""

    model_config = ConfigDict(populate_by_name=True)

    idempotency_key: str | None = Field(
        default=None,
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description=(
            'IETF httpapi Idempotency-Key (a Structured Field string such as "a1b2", or a '
            "bare token; 1-255 printable ASCII characters). Repeating the request with the "
            "same key and the same body from the same caller on the same app returns the "
            "first response (200) without creating another run; the same key with another "
            "body is 422 IDEMPOTENCY_KEY_REUSED. Keys expire after "
            "RUNWRIGHT_IDEMPOTENCY_KEY_TTL_SECONDS (default 24 h)."
        ),
    )


class ApprovalDecision(BaseModel):
    """The decision on a run's pending approval request (issue 12)."""

    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(
        min_length=1, max_length=200, description="From the `approval.requested` event."
    )
    decision: Literal["approve", "reject"]
    arguments: dict[str, Any] | None = Field(
        default=None,
        description=(
            "approve only: run the call with these arguments instead of the model's. "
            "Validated at the decision by the tool's own argument rules (path policy, "
            "command allowlist, the size limit of what it writes): 422 with the tool's "
            "code (e.g. PATCH_TOO_LARGE, BUILDER_PATCH_POLICY_VIOLATION) and field "
            "(approval.arguments.<name>) when refused; the run keeps waiting."
        ),
    )
    message: str | None = Field(
        default=None,
        max_length=MAX_APPROVAL_MESSAGE_CHARS,
        description="reject: why; the model reads it as the call's result.",
    )


class ResumeHeaders(BaseModel):
    """Optional headers of resume (documentation only; the route validates them)."""

    model_config = ConfigDict(populate_by_name=True)

    idempotency_key: str | None = Field(
        default=None,
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description=(
            "As on run creation (1-255 printable ASCII characters). The run keeps the key of "
            "each resume it applied (its last 16): repeating the request with the same key "
            "and body from the same caller answers 200 with the run as it is now and never "
            "resumes it again, even once it has paused again; the same key with another "
            "body is 422 IDEMPOTENCY_KEY_REUSED. Without a key, a retry after a lost answer "
            "(a 503 or a dropped connection) may meet 409 'Run is not paused' or resume the "
            "run's next pause."
        ),
    )


class ResumeRequest(BaseModel):
    """``POST .../resume``: the payload handed to the engine (contract 1.6) and, for a run
    paused on an approval request, the decision."""

    payload: dict[str, Any] = Field(
        default_factory=dict,
        description=f"Handed to the engine; the member {RESUME_KEYS_FIELD!r} is reserved.",
    )

    @field_validator("payload")
    @classmethod
    def _no_reserved_member(cls, value: dict[str, Any]) -> dict[str, Any]:
        if RESUME_KEYS_FIELD in value:
            raise ValueError(f"payload member {RESUME_KEYS_FIELD!r} is reserved")
        return value

    approval: ApprovalDecision | None = Field(
        default=None,
        description=(
            "Required when the run waits for an approval (422 APPROVAL_REQUIRED otherwise); "
            "409 APPROVAL_NOT_PENDING when the paused run waits for none or request_id is "
            "not the pending one; 409 'Run is not paused' when the run is not paused. "
            "A repeat of the decision the run already took (same request_id, decision, "
            "arguments and message) answers 200 with the run: safe to retry after a 503."
        ),
    )


class RestoreRequest(BaseModel):
    """``POST .../checkpoints/{checkpoint_id}/restore`` (contract 1.9)."""

    run_id: uuid.UUID | None = None


class CheckpointResponse(BaseModel):
    """A checkpoint derived from a run (contract 1.8)."""

    checkpoint_id: str
    run_id: str
    app_id: str
    revision_id: str | None
    created_at: str


class RestoreResponse(BaseModel):
    """The restore result (contract 1.9): the new draft revision."""

    checkpoint_id: str
    revision: RevisionResponse
    run_id: str | None


class RunEventEnvelope(BaseModel):
    """The JSON object in each stream event's ``data`` (contract 3.2)."""

    event: str = Field(
        description=(
            "One of contract 3.3's types, e.g. 'assistant.delta', or 'approval.requested' "
            "(stage 'tool'; payload {request_id, tool, arguments, editable, timeout_seconds}): "
            "the run pauses until POST .../resume decides the call."
        )
    )
    run_id: uuid.UUID
    app_id: uuid.UUID
    seq: int = Field(ge=1, le=MAX_SEQ)
    ts: str = Field(description="ISO 8601, UTC, '+00:00'.")
    stage: str
    payload: dict[str, Any] = Field(
        description=(
            "The type's payload (contract 3.3), or, for an event the database refused to "
            "store, {unstorable: true, reason} with the same seq and type and a diagnostic "
            "with code EVENT_UNSTORABLE (its content is lost)."
        )
    )
    diagnostics: list[dict[str, Any]]


class StreamEvent(BaseModel):
    """One server-sent event of a run's stream, as an EventSource reads it (contract 3.1):
    ``id: <seq>`` and ``data: <envelope JSON>``. Comments (the prelude, ``: keep-alive``)
    are not events."""

    id: str = Field(description="The event's seq; a reconnect sends it as Last-Event-ID.")
    event: Literal["message"] = Field(
        default="message", description="No 'event:' line is sent: the default type."
    )
    data: str = Field(
        description="The envelope as JSON text.",
        json_schema_extra={
            "contentMediaType": "application/json",
            "contentSchema": RunEventEnvelope.model_json_schema(),
        },
    )
