"""Request and response models of the coding-agent session routes (docs/design.md 10)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from web.schemas.runs import ListQuery, MultitaskStrategy, RunResponse

MAX_TITLE_CHARS = 200


class CreateSessionRequest(BaseModel):
    """``POST /admin/apps/{app_id}/coding-agent/sessions``."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, max_length=MAX_TITLE_CHARS)
    multitask_strategy: MultitaskStrategy = Field(
        default="reject",
        description=(
            "What a run create does while a run of the session is queued, running or "
            "paused, unless the create names its own (see CreateRunRequest)."
        ),
    )


class SessionListQuery(ListQuery):
    """``?limit=`` of the session list; any other parameter is a 422 (a new route, so
    strict like the run lists' filters)."""

    model_config = ConfigDict(extra="forbid")


class SessionResponse(BaseModel):
    """A coding-agent session: an ordered conversation of runs on one app."""

    session_id: str
    published_app_id: str
    title: str | None
    multitask_strategy: MultitaskStrategy
    run_count: int = Field(description="Runs created in the session so far.")
    created_by: str | None = Field(description="The user who created it (null: a workload).")
    created_at: str
    updated_at: str = Field(description="When the session's last run was created.")


class SessionDetailResponse(SessionResponse):
    """A session with its runs in session order (the oldest first)."""

    runs: list[RunResponse]
