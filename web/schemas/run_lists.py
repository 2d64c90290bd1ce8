"""Query models of the run lists (issue 12 item 4): per app and across a tenant's apps."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from web.run_cursors import MAX_CURSOR_CHARS
from web.schemas.common import IsoDatetime

RunStatus = Literal["queued", "running", "completed", "failed", "cancelled", "paused"]
RunEngine = Literal["native", "opencode", "scripted"]


class RunListQuery(BaseModel):
    """``GET .../coding-agent/runs`` and ``GET /admin/coding-agent/runs``: newest first.

    Every parameter is optional; any other parameter is a 422 (``extra_forbidden``), so a
    misspelt filter never silently lists everything. Datetimes are ISO 8601 (UTC when no
    offset is given; encode ``+`` as ``%2B`` or use ``Z``).
    """

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=25, ge=1, le=100, description="Page size, 1..100.")
    status: list[RunStatus] | None = Field(
        default=None,
        description="Only runs in one of these statuses: repeat the parameter "
        "(`status=queued&status=running`) or separate with commas.",
    )
    engine: list[RunEngine] | None = Field(
        default=None, description="Only runs of one of these engines (repeat or commas)."
    )
    session_id: uuid.UUID | None = Field(
        default=None, description="Only the runs of this coding-agent session."
    )
    created_before: IsoDatetime | None = Field(
        default=None, description="Only runs created strictly before this instant."
    )
    created_after: IsoDatetime | None = Field(
        default=None, description="Only runs created strictly after this instant."
    )
    cursor: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_CURSOR_CHARS,
        description="From a previous page's `Runwright-Next-Cursor` (older runs) or "
        "`Runwright-Prev-Cursor` (newer runs) header; opaque and signed. Keep the same "
        "filters. A cursor that was altered or belongs to another list is a 422.",
    )

    @field_validator("status", "engine", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        """One value, repeated values, or comma-separated values, as a list."""
        if value is None:
            return None
        values = value if isinstance(value, list) else [value]
        if not all(isinstance(v, str) for v in values):
            return value  # let the type check report it
        parts = [part.strip() for v in values for part in v.split(",") if part.strip()]
        if not parts:  # `?status=`: a filter with no value would list everything
            raise ValueError("give at least one value")
        return parts


class TenantRunListQuery(RunListQuery):
    """``GET /admin/coding-agent/runs``: the tenant's runs across its apps; ``app_id``
    narrows it to one app."""

    app_id: uuid.UUID | None = Field(default=None, description="Only this app's runs.")


class RunListHeaders(BaseModel):
    """Paging headers of a run list (the body stays the contract's JSON array)."""

    model_config = ConfigDict(populate_by_name=True)

    next_cursor: str | None = Field(
        default=None,
        alias="Runwright-Next-Cursor",
        description="Cursor of the next page (older runs); absent on the last page.",
    )
    prev_cursor: str | None = Field(
        default=None,
        alias="Runwright-Prev-Cursor",
        description="Cursor of the previous page (newer runs); absent on the first page.",
    )
    link: str | None = Field(
        default=None,
        alias="Link",
        description='RFC 8288 links to the same pages: rel="next" and rel="prev".',
    )
