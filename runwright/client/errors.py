"""The client's exception tree: every failure is a :class:`RunwrightError`.

An HTTP error answer becomes an :class:`ApiError` (or a subclass chosen by status) carrying
the API's ``detail`` exactly as sent: a string, an object such as
``{"code": "REVISION_CONFLICT", ...}``, or the 422 list of ``{type, loc, msg, input}``
items (the server's error shapes: ``web/errors.py``).
"""

from __future__ import annotations

from typing import Any


class RunwrightError(Exception):
    """Base of every error this client raises."""


class TransportError(RunwrightError):
    """The server could not be reached or the connection broke, after every retry."""


class StreamError(RunwrightError):
    """A run's stream kept failing without progress after every reconnect attempt."""


class ApiError(RunwrightError):
    """The server answered with an error status.

    Attributes:
        status: the HTTP status code.
        detail: the response's ``detail`` (str, dict or list), or its text when the body
            was not the API's JSON error shape.
        method: the request method.
        path: the request path.
    """

    def __init__(self, status: int, detail: Any, *, method: str, path: str) -> None:
        self.status = status
        self.detail = detail
        self.method = method
        self.path = path
        super().__init__(f"{method} {path} -> {status}: {detail_text(detail)}")

    @property
    def code(self) -> str | None:
        """The machine-readable code when ``detail`` is an object with ``code``
        (e.g. ``REVISION_CONFLICT``, ``CODING_AGENT_MODEL_UNAVAILABLE``), else None."""
        if isinstance(self.detail, dict) and isinstance(self.detail.get("code"), str):
            return self.detail["code"]
        return None


class BadRequest(ApiError):
    """400: the request was understood and refused (e.g. "input is required")."""


class Unauthorized(ApiError):
    """401: missing, invalid or expired bearer token."""


class Forbidden(ApiError):
    """403: the token is valid but may not do this (scopes, tenant, role)."""


class NotFound(ApiError):
    """404: the app or run does not exist in the caller's tenant."""


class Conflict(ApiError):
    """409: e.g. a stale ``base_revision_id`` or resuming a run that is not paused."""


class ValidationFailed(ApiError):
    """422: the request's shape was wrong; ``detail`` lists the failing fields."""


class Unavailable(ApiError):
    """503 (or 502/504, 429) still answered after every retry."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: ValidationFailed,
    429: Unavailable,
    502: Unavailable,
    503: Unavailable,
    504: Unavailable,
}


def api_error(status: int, detail: Any, *, method: str, path: str) -> ApiError:
    """The :class:`ApiError` subclass for ``status`` (plain ApiError for others)."""
    return _BY_STATUS.get(status, ApiError)(status, detail, method=method, path=path)


def detail_text(detail: Any) -> str:
    """A one-line rendering of ``detail`` for messages (422 items as "loc: msg")."""
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict) and "msg" in item:
                loc = ".".join(str(p) for p in item.get("loc", []))
                parts.append(f"{loc}: {item['msg']}" if loc else str(item["msg"]))
            else:
                parts.append(str(item))
        return "; ".join(parts)
    if isinstance(detail, dict):
        code, message = detail.get("code"), detail.get("message")
        if code and message:
            return f"{code}: {message}"
    return str(detail)
