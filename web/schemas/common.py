"""Types shared by the API models: UTC datetimes and the error body."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, Field, PlainSerializer
from quart_schema import document_response

from runtime.runs.events import iso

F = TypeVar("F", bound=Callable[..., Any])


def iso_utc(value: datetime) -> str:
    """ISO 8601 in UTC with ``+00:00``, e.g. ``"2026-02-18T09:30:00.123456+00:00"``.

    Naive datetimes are taken as UTC. One format on every wire (DESIGN.md section 6): the
    same function formats REST objects and SSE envelopes (contract 3.1 names ``+00:00``).
    """
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return iso(value)


UtcDatetime = Annotated[
    datetime, PlainSerializer(iso_utc, return_type=str, when_used="json-unless-none")
]


class ErrorResponse(BaseModel):
    """Every error: ``detail`` is a string, a ``{code, message, ...}`` object or a list of
    validation items ``{type, loc, msg, input}``."""

    detail: Any = Field(description="What went wrong; shape depends on the error.")


def document_errors(*statuses: int) -> Callable[[F], F]:
    """Decorator: document :class:`ErrorResponse` for each status in the OpenAPI spec."""

    def decorate(func: F) -> F:
        for status in statuses:
            func = document_response(ErrorResponse, status)(func)
        return func

    return decorate
