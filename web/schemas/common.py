"""Types shared by the API models: UTC datetimes and the error body."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
)
from quart_schema import document_response

from runtime.runs.events import iso

F = TypeVar("F", bound=Callable[..., Any])


def iso_utc(value: datetime) -> str:
    """ISO 8601 in UTC with ``+00:00``, e.g. ``"2026-02-18T09:30:00.123456+00:00"``.

    Naive datetimes are taken as UTC. One format on every wire (docs/design.md section 6): the
    same function formats REST objects and SSE envelopes (contract 3.1 names ``+00:00``).
    """
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return iso(value)


UtcDatetime = Annotated[
    datetime, PlainSerializer(iso_utc, return_type=str, when_used="json-unless-none")
]


def _iso_only(value: Any) -> Any:
    """Refuse what pydantic would read as a Unix timestamp (``-375``, ``1.5``): an
    instant in a query is ISO 8601 text."""
    if isinstance(value, (int, float)) or (
        isinstance(value, str) and value.strip().lstrip("+-").replace(".", "", 1).isdigit()
    ):
        raise ValueError("Input should be an ISO 8601 date-time")
    return value


def _in_utc(value: datetime) -> datetime:
    """The instant in UTC (a naive one is taken as UTC); one whose offset moves it out of
    years 1..9999 (``0001-01-01T00:00:00+14:00``) is a validation error, not a 500 at the
    database driver."""
    try:
        return as_utc(value).astimezone(UTC)
    except OverflowError:
        raise ValueError("Input should be a date-time within years 1..9999 in UTC") from None


IsoDatetime = Annotated[datetime, BeforeValidator(_iso_only), AfterValidator(_in_utc)]


def _not_a_bool(value: Any) -> Any:
    """Refuse ``true``/``false`` where a number is expected: pydantic's lax mode reads them
    as 1 and 0 (``approval_timeout_seconds: true`` meant one second)."""
    if isinstance(value, bool):
        raise ValueError("Input should be a number, not a boolean")
    return value


NoBool = BeforeValidator(_not_a_bool)
"""Put in ``Annotated[int | float, NoBool, Field(...)]`` for numbers in request bodies."""
"""A date-time parameter given as ISO 8601 text only, read as an aware UTC instant (a
naive one is taken as UTC)."""


def as_utc(value: datetime) -> datetime:
    """``value`` with a time zone: a naive one is taken as UTC (as :func:`iso_utc` does)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


class ValidationItem(BaseModel):
    """One 422 item, FastAPI's shape: ``{"type", "loc", "msg", "input"}``."""

    type: str = Field(description="e.g. 'missing', 'uuid_parsing', 'json_invalid'.")
    loc: list[str | int] = Field(description="Where: 'body'/'query'/'path'/'header' first.")
    msg: str
    input: Any = Field(description="The offending value (null when not shown).")


class ErrorDetail(BaseModel):
    """A coded error, e.g. ``{"code": "REVISION_CONFLICT", "message": ..., ...}``; some
    codes add fields (``field``, ``latest_revision_id``, ``diagnostics``, ...)."""

    model_config = ConfigDict(extra="allow")

    code: str
    message: str


class ErrorResponse(BaseModel):
    """Every error: ``detail`` is a string, a ``{code, message, ...}`` object or a list of
    validation items ``{type, loc, msg, input}``."""

    detail: str | ErrorDetail | list[ValidationItem] = Field(
        description="What went wrong; shape depends on the error."
    )


def document_content(
    status: int, media_type: str, description: str, schema: type[BaseModel] | None = None
) -> Callable[[F], F]:
    """Decorator: a response that is not JSON (an event stream, an HTML page), added to the
    OpenAPI document by :class:`web.openapi.RunwrightOpenAPI` as
    ``{status: {"description", "content": {media_type: {"schema": ...}}}}``: ``schema``'s
    JSON schema (for ``text/event-stream``: one event), else ``{"type": "string"}``."""

    def decorate(func: F) -> F:
        documented = dict(getattr(func, CONTENT_ATTRIBUTE, {}))
        documented[status] = (media_type, description, schema)
        setattr(func, CONTENT_ATTRIBUTE, documented)
        return func

    return decorate


CONTENT_ATTRIBUTE = "_runwright_content_responses"


def document_errors(*statuses: int) -> Callable[[F], F]:
    """Decorator: document :class:`ErrorResponse` for each status in the OpenAPI spec."""

    def decorate(func: F) -> F:
        for status in statuses:
            func = document_response(ErrorResponse, status)(func)
        return func

    return decorate
