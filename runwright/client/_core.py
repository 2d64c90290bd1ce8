"""The client's I/O-free core, shared by :class:`~runwright.client.Client` and
:class:`~runwright.client.AsyncClient`: what each call sends, how its answer is read, when a
failure may be retried, and the stream cursor that drops repeats. The two clients only
perform the I/O (the "functional core, imperative shell" split of STYLE.md), so neither
duplicates a rule.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import httpx
from pydantic import TypeAdapter

from runwright.client.errors import api_error
from runwright.client.models import App, BuilderState, Revision, Run, RunEvent, StreamTicket

T = TypeVar("T")

# Statuses that mean "not done, ask again": refused before any work (429), or a server that
# could not answer (503: e.g. the run's actor did not reply; 502/504 from a proxy).
RETRY_STATUSES = frozenset({429, 502, 503, 504})
# Failures where the request certainly never reached the server.
_UNSENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)

_RUNS = TypeAdapter(list[Run])


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
        replayable: sending it twice has the effect of sending it once (GET, cancel, and
            create with its ``Idempotency-Key``), so a failure after it may have reached the
            server can be retried too. Other calls retry only failures that prove the
            request was not processed (connection refused, 429, 503).
    """

    method: str
    path: str
    parse: Callable[[Any], T]
    json_body: Any = None
    params: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    replayable: bool = True

    def retry_status(self, status: int) -> bool:
        """True when an answer with ``status`` may be retried."""
        if status in (429, 503):
            return True  # refused or not answered: nothing was done
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
    approval_policy: str | None = None,
    approval_timeout_seconds: float | None = None,
    webhook: str | None = None,
) -> Call[Run]:
    """``POST .../runs`` with an ``Idempotency-Key`` (a fresh UUID unless given), the same
    on every retry of this call, so the server creates the run at most once. ``webhook``:
    a URL that gets the run object, signed, when the run ends or pauses (README
    "Webhooks")."""
    body: dict[str, Any] = {"input": input}
    for key, value in (
        ("engine", engine), ("base_revision_id", base_revision_id), ("model_id", model_id),
        ("messages", messages), ("script", script), ("approval_policy", approval_policy),
        ("approval_timeout_seconds", approval_timeout_seconds), ("webhook", webhook),
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


def list_runs(app_id: uuid.UUID | str, limit: int = 25) -> Call[list[Run]]:
    """``GET .../runs?limit=`` (1..100): newest first."""
    return Call("GET", runs_path(app_id), _RUNS.validate_python, params={"limit": limit})


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
) -> Call[Run]:
    """``POST .../resume`` (with ``approval``, the decision on the run's pending approval
    request: ``{request_id, decision, arguments?, message?}``): not replayable (a second
    resume answers 409)."""
    body: dict[str, Any] = {"payload": payload or {}}
    if approval is not None:
        body["approval"] = approval
    return Call("POST", runs_path(app_id, _run_suffix(run_id, "/resume")), Run.model_validate,
                json_body=body, replayable=False)  # fmt: skip


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
# httpx's own default pool bounds (``httpx.Limits()`` without arguments means unbounded).
DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)
