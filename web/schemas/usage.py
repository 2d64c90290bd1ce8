"""Models of ``GET /admin/usage`` (issue 12 item 3)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from web.schemas.common import IsoDatetime, UtcDatetime


class UsageQuery(BaseModel):
    """The range, by when each model or tool call ended: ``[from, to)``. Default: the 30
    days up to now. Any other parameter is a 422."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    start: IsoDatetime | None = Field(
        default=None, alias="from", description="Start (inclusive), ISO 8601; no offset: UTC."
    )
    end: IsoDatetime | None = Field(
        default=None, alias="to", description="End (exclusive), ISO 8601; default: now."
    )


class UsageTotals(BaseModel):
    """Sums over the calls in the range. Token sums cover the model calls whose endpoint
    reported them (null when none did; never estimated)."""

    prompt_tokens: int | None
    completion_tokens: int | None
    total_tokens: int | None
    model_calls: int = Field(description="Model requests that completed.")
    model_calls_without_usage: int = Field(
        description="Of those, the ones whose endpoint reported no token counts."
    )
    model_seconds: float
    tool_calls: int
    tool_seconds: float
    runs: int = Field(description="Runs with at least one call in the range.")


class AppUsage(UsageTotals):
    """One app's sums."""

    app_id: str | None = Field(description="Null: calls of a deleted app's runs.")


class ModelUsage(UsageTotals):
    """One registry model's sums (tool calls count under the run's model)."""

    model_id: str | None = Field(description="Null: the model was deleted.")
    model_name: str | None


class UsageResponse(BaseModel):
    """``GET /admin/usage``: the caller's tenant only."""

    tenant_id: str
    start: UtcDatetime = Field(alias="from", serialization_alias="from")
    end: UtcDatetime = Field(alias="to", serialization_alias="to")
    totals: UsageTotals
    by_app: list[AppUsage]
    by_model: list[ModelUsage]
