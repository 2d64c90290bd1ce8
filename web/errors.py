"""Every error response of the API: ``{"detail": <string or object or list>}``.

One place decides how failures look on the wire (docs/design.md 8.6: no 500 on bad input):

- :class:`ApiError` — raised by routes and auth with the contract's status and detail;
- typed run errors (:mod:`runtime.runs.errors`) — mapped by :func:`run_error_response`,
  the only place their statuses and ``detail`` shapes are written;
- request validation (quart-schema, bad JSON, wrong types, bad path ids) — 422 with a
  FastAPI-style list ``[{"type", "loc", "msg", "input"}]``;
- routing 404/405 and other HTTP exceptions — their status with ``{"detail": <reason>}``;
- the database unreachable (storage's :class:`~storage.errors.DatabaseUnavailable`, or a
  request before the database step started) — 503 with ``Retry-After`` and
  ``{"detail": {"code": "DATABASE_UNAVAILABLE", "message": ...}}``, never a 500;
- anything else — logged, 500 ``{"detail": "Internal server error"}`` (never an HTML page).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError
from quart import Quart, Response, jsonify
from quart_schema import RequestSchemaValidationError
from quart_schema.validation import QuerystringValidationError, RequestHeadersValidationError
from werkzeug.exceptions import HTTPException

from runtime.runs import errors as run_errors
from runtime.runs.events import iso
from storage.errors import DatabaseUnavailable
from web.lifespan import NotStarted

log = logging.getLogger(__name__)

INTERNAL_ERROR = "Internal server error"
RUN_NOT_FOUND = "Coding-agent run not found"
SESSION_NOT_FOUND = "Coding-agent session not found"

SECRET_FIELDS = frozenset({"api_key"})
"""Request fields that are write-only secrets (docs/security.md): never echoed in errors."""

# RFC 9110 section 10.2.3: seconds a client should wait before retrying a 503. A restarting
# Postgres is back within seconds; a client retrying sooner only adds load.
RETRY_AFTER_SECONDS = 2
DATABASE_UNAVAILABLE = {
    "code": "DATABASE_UNAVAILABLE",
    "message": "The database is unavailable. Retry after the Retry-After delay (seconds).",
}

IDEMPOTENCY_KEY_REUSED = {
    "code": "IDEMPOTENCY_KEY_REUSED",
    "message": "This Idempotency-Key was already used with a different request body.",
}
"""A create's or a resume's key repeated with another body (IETF idempotency draft 2.7)."""


def headers_too_large(limit: int) -> dict[str, str]:
    """The ``detail`` of a 431 (RFC 6585 section 5) for a request head over ``limit``
    bytes (:mod:`web.header_limits`)."""
    return {
        "code": "REQUEST_HEADERS_TOO_LARGE",
        "message": f"The request line and headers exceed {limit} bytes; send smaller headers.",
    }


# FastAPI's wording for routing failures, so clients see the reference's texts.
_HTTP_REASONS = {404: "Not Found", 405: "Method Not Allowed"}


class ApiError(Exception):
    """An HTTP error with the contract's status and ``detail`` (string, object or list)."""

    def __init__(self, status: int, detail: Any, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status}: {detail!r}")
        self.status = status
        self.detail = detail
        self.headers = headers or {}


def validation_items(
    exc: ValidationError, *, location: Sequence[str | int]
) -> list[dict[str, Any]]:
    """Convert pydantic errors to FastAPI's 422 items, ``loc`` prefixed with ``location``.

    Example item: ``{"type": "missing", "loc": ["body", "input"], "msg": "Field required",
    "input": {}}``. Write-only fields (:data:`SECRET_FIELDS`) are never echoed: an error at
    one has ``input: null``, and one inside any echoed object reads ``"[redacted]"``.
    """
    items = []
    for err in exc.errors(include_url=False, include_context=False):
        secret = any(part in SECRET_FIELDS for part in err["loc"])
        items.append(
            {
                "type": err["type"],
                "loc": [*location, *err["loc"]],
                "msg": err["msg"],
                "input": None if secret else _json_safe(err.get("input")),
            }
        )
    return items


def request_validation_error(items: list[dict[str, Any]]) -> ApiError:
    """The 422 :class:`ApiError` for a list of validation items."""
    return ApiError(422, items)


def json_error(status: int, detail: Any, headers: dict[str, str] | None = None) -> Response:
    """Build the JSON error response ``{"detail": detail}``."""
    response = jsonify({"detail": detail})
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def run_error_response(exc: run_errors.RunError) -> tuple[int, Any]:
    """The HTTP status and ``detail`` of a typed run error (contract 1.2, 1.6, 1.7).

    Raises:
        TypeError: a run error class without a mapping here (a programming error).
    """
    match exc:
        case run_errors.AppNotFound():
            return 404, "Published app not found"
        case run_errors.RunNotFound():
            return 404, RUN_NOT_FOUND
        case run_errors.RevisionConflict():
            return 409, {
                "code": "REVISION_CONFLICT",
                "latest_revision_id": str(exc.latest_revision_id),
                "latest_updated_at": iso(exc.latest_updated_at),
                "message": "Draft revision is stale",
            }
        case run_errors.InputRequired():
            return 400, "input is required"
        case run_errors.ModelUnavailable():
            return 400, {
                "code": "CODING_AGENT_MODEL_UNAVAILABLE", "field": "model_id", "message": str(exc)
            }  # fmt: skip
        case run_errors.EngineRefused():
            return 400, {"code": exc.code, "field": "engine", "message": exc.message}
        case run_errors.TenantQueueFull():
            return 429, {
                "code": "TENANT_QUEUE_FULL",
                "message": f"This tenant already has {exc.limit} queued runs; retry later.",
            }
        case run_errors.SessionNotFound():
            return 404, SESSION_NOT_FOUND
        case run_errors.SessionBusy():
            return 409, {
                "code": "SESSION_BUSY",
                "message": (
                    f"A run of this session is {exc.active_status}; multitask_strategy "
                    "'reject' refuses another. Wait for it to end, or create the run with "
                    "multitask_strategy 'enqueue', 'interrupt' or 'rollback'."
                ),
                "session_id": str(exc.session_id),
                "active_run_id": str(exc.active_run_id),
            }
        case run_errors.RunNotPaused():
            return 409, "Run is not paused"
        case run_errors.RunNotEnded():
            return 409, {
                "code": "RUN_NOT_ENDED",
                "message": (
                    f"The run is {exc.status}: a restore relinks only a run that has ended "
                    "(completed, failed or cancelled), since a live run's workspace would "
                    "no longer match its checkpoint. Restore without run_id, or wait for "
                    "the run to end (or cancel it) first; nothing was restored."
                ),
                "run_id": str(exc.run_id),
                "status": exc.status,
            }
        case run_errors.ApprovalNotPending():
            detail = {"code": "APPROVAL_NOT_PENDING", "message": exc.message}
            if exc.pending_request_id is not None:
                detail["pending_request_id"] = exc.pending_request_id
            return 409, detail
        case run_errors.ApprovalInvalid():
            return 422, {"code": exc.code, "field": exc.field, "message": exc.message}
        case run_errors.ResumeKeyReused():
            return 422, IDEMPOTENCY_KEY_REUSED
        case run_errors.RunUnresponsive():
            return 503, "The run did not answer in time; try again"
        case run_errors.RunActorFailed():
            return 503, "The run's actor failed; try again"
        case run_errors.RunOwnerUnresponsive():
            return 503, {
                "code": "RUN_OWNER_UNRESPONSIVE",
                "message": (
                    f"The node executing this run did not confirm the cancel within "
                    f"{exc.timeout:g} s; the run is not cancelled. Retry: a node that died "
                    "has its runs settled by the restart policy, then cancel answers at once."
                ),
            }
    raise TypeError(f"no HTTP mapping for {type(exc).__name__}")


def database_unavailable() -> Response:
    """The 503 for an unreachable database: ``Retry-After`` and a ``DATABASE_UNAVAILABLE``
    detail (RFC 9110 section 15.6.4)."""
    return json_error(503, DATABASE_UNAVAILABLE, {"Retry-After": str(RETRY_AFTER_SECONDS)})


def install_error_handlers(app: Quart) -> None:
    """Register the handlers on ``app``; call once from ``create_app``."""

    @app.errorhandler(ApiError)
    async def _api_error(exc: ApiError) -> Response:
        return json_error(exc.status, exc.detail, exc.headers)

    @app.errorhandler(run_errors.RunError)
    async def _run_error(exc: run_errors.RunError) -> Response:
        status, detail = run_error_response(exc)
        retry_after = getattr(exc, "retry_after_seconds", None)
        headers = None if retry_after is None else {"Retry-After": str(retry_after)}
        return json_error(status, detail, headers)

    @app.errorhandler(RequestSchemaValidationError)
    async def _schema_error(exc: RequestSchemaValidationError) -> Response:
        if isinstance(exc, QuerystringValidationError):
            location = "query"
        elif isinstance(exc, RequestHeadersValidationError):
            location = "header"
        else:
            location = "body"
        inner = exc.validation_error
        if isinstance(inner, ValidationError):
            return json_error(422, validation_items(inner, location=[location]))
        item = {"type": "value_error", "loc": [location], "msg": str(inner), "input": None}
        return json_error(422, [item])

    @app.errorhandler(DatabaseUnavailable)
    async def _database_unavailable(exc: DatabaseUnavailable) -> Response:
        log.warning("database unavailable while serving a request: %s", exc)
        return database_unavailable()

    @app.errorhandler(NotStarted)
    async def _not_started(exc: NotStarted) -> Response:
        return database_unavailable()

    @app.errorhandler(HTTPException)
    async def _http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        detail = _HTTP_REASONS.get(status) or exc.name
        headers = {}
        if status == 405 and getattr(exc, "valid_methods", None):
            headers["Allow"] = ", ".join(exc.valid_methods)  # type: ignore[attr-defined]
        return json_error(status, detail, headers)

    @app.errorhandler(Exception)
    async def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error while serving a request", exc_info=exc)
        return json_error(500, INTERNAL_ERROR)


def _json_safe(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {
            str(k): "[redacted]" if k in SECRET_FIELDS else _json_safe(v) for k, v in value.items()
        }
    return str(value)
