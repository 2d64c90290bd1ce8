"""The client's I/O-free core, shared by :class:`~runwright.client.Client` and
:class:`~runwright.client.AsyncClient`: what each call sends, how its answer is read, when a
failure may be retried, and the stream cursor that drops repeats. The two clients only
perform the I/O (the "functional core, imperative shell" split of STYLE.md), so neither
duplicates a rule.
"""

from __future__ import annotations

import functools
import json
import random
import ssl
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypedDict, TypeVar, Unpack

import httpx
from pydantic import TypeAdapter

from runwright.client.errors import api_error
from runwright.client.models import (
    AgentSettings,
    App,
    ApprovalPolicy,
    BuilderState,
    MultitaskStrategy,
    Revision,
    Run,
    RunEngine,
    RunEvent,
    RunPage,
    RunStatus,
    Session,
    SessionDetail,
    StreamTicket,
    Usage,
    WebhookDelivery,
    WebhookSecret,
    WebhookSecretInfo,
)

T = TypeVar("T")

# Statuses that mean "ask again": refused before any work (429), or a server that could not
# answer (503: e.g. the run's actor did not reply in time; 502/504 from a proxy).
RETRY_STATUSES = frozenset({429, 502, 503, 504})
# Failures where the request certainly never reached the server.
_UNSENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)

_RUNS = TypeAdapter(list[Run])
_SESSIONS = TypeAdapter(list[Session])
_DELIVERIES = TypeAdapter(list[WebhookDelivery])
# The run lists' paging headers (README "Run queries").
NEXT_CURSOR_HEADER = "Runwright-Next-Cursor"
PREV_CURSOR_HEADER = "Runwright-Prev-Cursor"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently to retry.

    Attributes:
        attempts: tries per call, the first included (>= 1). For streams: reconnects in a
            row that bring no new event before :class:`~runwright.client.StreamError`.
        backoff: seconds before the first retry; doubles each time (full jitter).
        max_backoff: cap of one wait, seconds.
        max_retry_after: cap on a server's ``Retry-After``, seconds.
    """

    attempts: int = 4
    backoff: float = 0.25
    max_backoff: float = 4.0
    max_retry_after: float = 30.0

    def delay(self, attempt: int, response: httpx.Response | None = None) -> float:
        """Seconds to wait before try ``attempt + 1`` (``attempt`` counts from 1)."""
        if response is not None:
            after = response.headers.get("Retry-After", "")
            if after.strip().isdigit():
                return min(float(after.strip()), self.max_retry_after)
        return random.uniform(0, min(self.max_backoff, self.backoff * 2 ** (attempt - 1)))


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One API call, described without performing it.

    Attributes:
        method, path: the request line (``path`` relative to the client's base URL).
        parse: turns the 2xx JSON body into the result.
        json_body, params, headers: what else is sent.
        parse_response: when set, turns the whole 2xx response into the result instead
            of ``parse`` (for answers whose headers carry part of it: a run list page).
        replayable: sending it twice has the effect of sending it once (GET, cancel,
            create and resume with their ``Idempotency-Key``), so a failure after it may
            have reached the server can be retried too. Other calls retry only connection
            refused, 429 and 503.
    """

    method: str
    path: str
    parse: Callable[[Any], T]
    json_body: Any = None
    params: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    replayable: bool = True
    parse_response: Callable[[httpx.Response], T] | None = None

    def retry_status(self, status: int) -> bool:
        """True when an answer with ``status`` may be retried."""
        if status in (429, 503):
            # Refused, or not answered in time. A 503 from resume may come after its command
            # went through: the repeat's Idempotency-Key then answers with the run.
            return True
        return self.replayable and status in RETRY_STATUSES

    def retry_error(self, exc: httpx.TransportError) -> bool:
        """True when a transport failure may be retried."""
        return isinstance(exc, _UNSENT) or self.replayable


def runs_path(app_id: uuid.UUID | str, suffix: str = "") -> str:
    """``/admin/apps/{app_id}/coding-agent/runs{suffix}`` (ids are validated as UUIDs,
    so nothing a caller passes can change the path)."""
    return f"/admin/apps/{uuid.UUID(str(app_id))}/coding-agent/runs{suffix}"


def _run_suffix(run_id: uuid.UUID | str, action: str = "") -> str:
    return f"/{uuid.UUID(str(run_id))}{action}"


def create_app(name: str, slug: str, template_key: str | None = None) -> Call[App]:
    """``POST /admin/apps``. Not replayable: a retry after a lost answer could only give
    409 for the taken slug."""
    body: dict[str, Any] = {"name": name, "slug": slug}
    if template_key is not None:
        body["template_key"] = template_key
    return Call("POST", "/admin/apps", App.model_validate, json_body=body, replayable=False)


def builder_state(app_id: uuid.UUID | str) -> Call[BuilderState]:
    """``GET /admin/apps/{app_id}/builder/state``."""
    return Call("GET", f"/admin/apps/{uuid.UUID(str(app_id))}/builder/state",
                BuilderState.model_validate)  # fmt: skip


def get_revision(app_id: uuid.UUID | str, revision_id: uuid.UUID | str) -> Call[Revision]:
    """``GET /admin/apps/{app_id}/revisions/{revision_id}``."""
    path = f"/admin/apps/{uuid.UUID(str(app_id))}/revisions/{uuid.UUID(str(revision_id))}"
    return Call("GET", path, Revision.model_validate)


def create_run(
    app_id: uuid.UUID | str,
    input: str,
    *,
    engine: str | None = None,
    base_revision_id: uuid.UUID | str | None = None,
    model_id: uuid.UUID | str | None = None,
    messages: list[dict[str, str]] | None = None,
    script: list[dict[str, Any]] | None = None,
    idempotency_key: str | None = None,
    approval_policy: ApprovalPolicy | None = None,
    approval_timeout_seconds: float | None = None,
    webhook: str | None = None,
    session_id: uuid.UUID | str | None = None,
    multitask_strategy: MultitaskStrategy | None = None,
    tools: list[str] | None = None,
) -> Call[Run]:
    """``POST .../runs`` with an ``Idempotency-Key`` (a fresh UUID unless given), the same
    on every retry of this call, so the server creates the run at most once. ``webhook``:
    a URL that gets the run object, signed, when the run ends or pauses (README
    "Webhooks"). ``session_id``: the run continues that session; ``multitask_strategy``
    (with ``session_id`` only) overrides the session's for this create. ``tools``: the
    native tools the run may call (default: all)."""
    body: dict[str, Any] = {"input": input}
    for key, value in (
        ("engine", engine), ("base_revision_id", base_revision_id), ("model_id", model_id),
        ("messages", messages), ("script", script), ("approval_policy", approval_policy),
        ("approval_timeout_seconds", approval_timeout_seconds), ("webhook", webhook),
        ("session_id", session_id), ("multitask_strategy", multitask_strategy),
        ("tools", tools),
    ):  # fmt: skip
        if value is not None:
            body[key] = str(value) if isinstance(value, uuid.UUID) else value
    key = idempotency_key or str(uuid.uuid4())
    return Call("POST", runs_path(app_id), Run.model_validate, json_body=body,
                headers={"Idempotency-Key": sf_string(key)})  # fmt: skip


def sf_string(text: str) -> str:
    """``text`` as a Structured Field string (RFC 8941 3.3.3), the form the IETF
    Idempotency-Key draft gives the header: quoted, ``\\`` and ``"`` escaped.

    Raises:
        ValueError: ``text`` has a character outside printable ASCII.
    """
    if any(not (0x20 <= ord(c) < 0x7F) for c in text):
        raise ValueError("an Idempotency-Key must be printable ASCII")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class RunFilters(TypedDict, total=False):
    """Filters of the run lists (``GET .../runs``, ``GET /admin/coding-agent/runs``); every
    one is optional, and a run must match all that are given.

    Keys:
        status: one status or several (any of them).
        engine: one engine or several.
        session_id: only the runs of this coding-agent session.
        created_before, created_after: only runs created strictly before / after this
            instant (a naive datetime is taken as UTC, as the server does).
    """

    status: RunStatus | Sequence[RunStatus]
    engine: RunEngine | Sequence[RunEngine]
    session_id: uuid.UUID | str
    created_before: datetime
    created_after: datetime


_FILTER_KEYS = frozenset(RunFilters.__annotations__)


def list_params(
    limit: int, cursor: str | None, filters: RunFilters, app_id: uuid.UUID | str | None = None
) -> dict[str, Any]:
    """The query of a run list. Several statuses or engines are sent as repeated
    parameters; ``app_id`` is the tenant list's filter.

    Raises:
        TypeError: a filter name the lists do not have (the server would answer 422).
    """
    unknown = set(filters) - _FILTER_KEYS
    if unknown:
        raise TypeError(f"unknown run list filter(s): {', '.join(sorted(unknown))}")
    params: dict[str, Any] = {"limit": limit}
    status, engine = filters.get("status"), filters.get("engine")
    if status is not None:
        params["status"] = [status] if isinstance(status, str) else list(status)
    if engine is not None:
        params["engine"] = [engine] if isinstance(engine, str) else list(engine)
    session_id = filters.get("session_id")
    if session_id is not None:
        params["session_id"] = str(uuid.UUID(str(session_id)))
    before, after = filters.get("created_before"), filters.get("created_after")
    if before is not None:
        params["created_before"] = before.isoformat()
    if after is not None:
        params["created_after"] = after.isoformat()
    if app_id is not None:
        params["app_id"] = str(uuid.UUID(str(app_id)))
    if cursor is not None:
        params["cursor"] = cursor
    return params


def _run_page(response: httpx.Response) -> RunPage:
    return RunPage(
        runs=_RUNS.validate_python(response.json()),
        next_cursor=response.headers.get(NEXT_CURSOR_HEADER),
        prev_cursor=response.headers.get(PREV_CURSOR_HEADER),
    )


def list_runs(
    app_id: uuid.UUID | str, limit: int = 25, **filters: Unpack[RunFilters]
) -> Call[list[Run]]:
    """``GET .../runs?limit=`` (1..100) with :class:`RunFilters`: newest first."""
    return Call("GET", runs_path(app_id), _RUNS.validate_python,
                params=list_params(limit, None, filters))  # fmt: skip


def runs_page(
    app_id: uuid.UUID | str,
    limit: int = 25,
    cursor: str | None = None,
    **filters: Unpack[RunFilters],
) -> Call[RunPage]:
    """``GET .../runs`` as a :class:`RunPage`: the runs and the paging headers' cursors."""
    params = list_params(limit, cursor, filters)
    return Call("GET", runs_path(app_id), RunPage.model_validate, params=params,
                parse_response=_run_page)  # fmt: skip


TENANT_RUNS_PATH = "/admin/coding-agent/runs"


def tenant_runs_page(
    limit: int = 25,
    cursor: str | None = None,
    app_id: uuid.UUID | str | None = None,
    **filters: Unpack[RunFilters],
) -> Call[RunPage]:
    """``GET /admin/coding-agent/runs``: the tenant's runs across its apps (``app_id``:
    only that app's), as a :class:`RunPage`."""
    params = list_params(limit, cursor, filters, app_id)
    return Call("GET", TENANT_RUNS_PATH, RunPage.model_validate, params=params,
                parse_response=_run_page)  # fmt: skip


def get_run(app_id: uuid.UUID | str, run_id: uuid.UUID | str) -> Call[Run]:
    """``GET .../runs/{run_id}``."""
    return Call("GET", runs_path(app_id, _run_suffix(run_id)), Run.model_validate)


def cancel_run(app_id: uuid.UUID | str, run_id: uuid.UUID | str) -> Call[Run]:
    """``POST .../cancel``: replayable (a finished run comes back unchanged)."""
    return Call("POST", runs_path(app_id, _run_suffix(run_id, "/cancel")), Run.model_validate)


def resume_run(
    app_id: uuid.UUID | str,
    run_id: uuid.UUID | str,
    payload: dict[str, Any] | None = None,
    approval: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
) -> Call[Run]:
    """``POST .../resume`` (with ``approval``, the decision on the run's pending approval
    request: ``{request_id, decision, arguments?, message?}``) with an ``Idempotency-Key``
    (a fresh UUID unless given), the same on every retry of this call: the run keeps the
    key of the resume it applied and answers a repeat with the run as it is now, never
    resuming it twice (README "Approving tool calls"), so it is replayable. A 503 says the
    run did not answer in time, not that nothing was done: the retry settles it."""
    body: dict[str, Any] = {"payload": payload or {}}
    if approval is not None:
        body["approval"] = approval
    key = idempotency_key or str(uuid.uuid4())
    return Call("POST", runs_path(app_id, _run_suffix(run_id, "/resume")), Run.model_validate,
                json_body=body, headers={"Idempotency-Key": sf_string(key)})  # fmt: skip


def decide(
    app_id: uuid.UUID | str,
    run_id: uuid.UUID | str,
    request_id: str,
    *,
    approve: bool,
    arguments: dict[str, Any] | None = None,
    message: str | None = None,
) -> Call[Run]:
    """``POST .../resume`` with the decision on the run's pending approval request (README
    "Approving tool calls"): approve (with ``arguments`` instead of the model's, checked
    like the model's) or reject (``message`` is what the model is told)."""
    approval: dict[str, Any] = {
        "request_id": request_id, "decision": "approve" if approve else "reject",
    }  # fmt: skip
    if arguments is not None:
        approval["arguments"] = arguments
    if message is not None:
        approval["message"] = message
    return resume_run(app_id, run_id, None, approval)


def _app_path(app_id: uuid.UUID | str, suffix: str) -> str:
    return f"/admin/apps/{uuid.UUID(str(app_id))}{suffix}"


def get_agent_settings(app_id: uuid.UUID | str) -> Call[AgentSettings]:
    """``GET .../coding-agent/settings``."""
    path = _app_path(app_id, "/coding-agent/settings")
    return Call("GET", path, AgentSettings.model_validate)


def set_agent_settings(
    app_id: uuid.UUID | str, approval_policy: ApprovalPolicy
) -> Call[AgentSettings]:
    """``PUT .../coding-agent/settings``: replayable (a PUT sent twice sets the same)."""
    path = _app_path(app_id, "/coding-agent/settings")
    return Call("PUT", path, AgentSettings.model_validate,
                json_body={"approval_policy": approval_policy})  # fmt: skip


def create_session(
    app_id: uuid.UUID | str,
    title: str | None = None,
    multitask_strategy: MultitaskStrategy | None = None,
) -> Call[Session]:
    """``POST .../coding-agent/sessions``. Not replayable: a retry after a lost answer
    would create a second session."""
    body: dict[str, Any] = {}
    if title is not None:
        body["title"] = title
    if multitask_strategy is not None:
        body["multitask_strategy"] = multitask_strategy
    path = _app_path(app_id, "/coding-agent/sessions")
    return Call("POST", path, Session.model_validate, json_body=body, replayable=False)


def list_sessions(app_id: uuid.UUID | str, limit: int = 25) -> Call[list[Session]]:
    """``GET .../coding-agent/sessions?limit=`` (1..100): newest first."""
    path = _app_path(app_id, "/coding-agent/sessions")
    return Call("GET", path, _SESSIONS.validate_python, params={"limit": limit})


def get_session(app_id: uuid.UUID | str, session_id: uuid.UUID | str) -> Call[SessionDetail]:
    """``GET .../coding-agent/sessions/{session_id}``: with its runs, oldest first."""
    path = _app_path(app_id, f"/coding-agent/sessions/{uuid.UUID(str(session_id))}")
    return Call("GET", path, SessionDetail.model_validate)


def usage(start: datetime | None = None, end: datetime | None = None) -> Call[Usage]:
    """``GET /admin/usage?from=&to=``: the tenant's usage over ``[start, end)`` (server
    default: the 30 days up to now)."""
    params = {}
    if start is not None:
        params["from"] = start.isoformat()
    if end is not None:
        params["to"] = end.isoformat()
    return Call("GET", "/admin/usage", Usage.model_validate, params=params)


def rotate_webhook_secret() -> Call[WebhookSecret]:
    """``POST /admin/webhooks/secret``: not replayable (each call replaces the secret, and
    a lost answer's secret can never be read again)."""
    path = "/admin/webhooks/secret"
    return Call("POST", path, WebhookSecret.model_validate, replayable=False)


def webhook_secret_info() -> Call[WebhookSecretInfo]:
    """``GET /admin/webhooks/secret``."""
    return Call("GET", "/admin/webhooks/secret", WebhookSecretInfo.model_validate)


def webhook_deliveries(
    app_id: uuid.UUID | str, run_id: uuid.UUID | str
) -> Call[list[WebhookDelivery]]:
    """``GET .../runs/{run_id}/webhook-deliveries``: oldest first."""
    path = runs_path(app_id, _run_suffix(run_id, "/webhook-deliveries"))
    return Call("GET", path, _DELIVERIES.validate_python)


def stream_ticket(app_id: uuid.UUID | str, run_id: uuid.UUID | str) -> Call[StreamTicket]:
    """``POST .../stream-ticket``: replayable (each answer is a fresh ticket; none has
    effects)."""
    path = runs_path(app_id, _run_suffix(run_id, "/stream-ticket"))
    return Call("POST", path, StreamTicket.model_validate)


def result(call: Call[T], response: httpx.Response) -> T:
    """The parsed 2xx body of ``response``.

    Raises:
        ApiError: (a subclass by status) for any non-2xx answer, with the API's ``detail``.
    """
    if response.is_success:
        if call.parse_response is not None:
            return call.parse_response(response)
        return call.parse(response.json())
    raise error_of(response, call.method, call.path)


def error_of(response: httpx.Response, method: str, path: str) -> Exception:
    """The :class:`~runwright.client.ApiError` for an error answer whose body was read."""
    try:
        body = response.json()
        detail = body["detail"] if isinstance(body, dict) and "detail" in body else body
    except (json.JSONDecodeError, UnicodeDecodeError):
        detail = response.text
    return api_error(response.status_code, detail, method=method, path=path)


class StreamCursor:
    """Where a run's stream is, across reconnects: the last seq handed to the caller.

    ``accept`` returns each event at most once (by seq), so nothing is yielded twice
    whatever a reconnect replays; ``headers`` resumes right after the last one
    (``Last-Event-ID``, the server's resume rule: docs/design.md section 4).
    """

    def __init__(self, after: int = 0) -> None:
        self.last_seq = after
        self.finished = False

    def headers(self) -> dict[str, str]:
        """Request headers for the next (re)connect."""
        return {"Last-Event-ID": str(self.last_seq)} if self.last_seq > 0 else {}

    def accept(self, data: str) -> RunEvent | None:
        """Parse one SSE ``data`` field; None for a repeat (seq already seen).

        Raises:
            pydantic.ValidationError: the data is not an event envelope.
        """
        event = RunEvent.model_validate_json(data)
        if event.seq <= self.last_seq:
            return None
        self.last_seq = event.seq
        self.finished = event.terminal
        return event


# A stream is idle at most one keep-alive interval (15 s by default); a read silent for this
# long means a dead connection, which is reconnected.
STREAM_READ_TIMEOUT = 60.0
# How long the asyncio client waits, after a stream's terminal event, for the end of the
# response (which the server sends right after it) so that the connection can be reused.
STREAM_DRAIN_SECONDS = 1.0
# httpx's own default pool bounds (``httpx.Limits()`` without arguments means unbounded).
# Idle connections are dropped after 4 s, before a server closes them (Hypercorn's default
# keep-alive is 5 s, Runwright's 30 s): reusing one the server is closing at that moment
# fails the request with a connection reset, which a create cannot safely retry blindly.
KEEPALIVE_EXPIRY = 4.0
DEFAULT_LIMITS = httpx.Limits(
    max_connections=100, max_keepalive_connections=20, keepalive_expiry=KEEPALIVE_EXPIRY
)


@functools.cache
def tls_context() -> ssl.SSLContext:
    """httpx's default TLS context (CAs from certifi, or ``SSL_CERT_FILE`` /
    ``SSL_CERT_DIR`` as set when it is first built), built once per process and shared by
    every client.

    httpx builds one for each client it makes, also for a plain ``http://`` base URL, and
    loading the CA bundle costs tens of milliseconds of CPU: more than a hundred requests'
    worth (docs/benchmarks.md, "The load client"). A context is safe to share: httpcore
    only sets ALPN on it per connection, the same (HTTP/1.1) for every client here.
    """
    return httpx.create_ssl_context()
