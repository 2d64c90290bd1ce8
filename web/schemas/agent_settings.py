"""API model of an app's coding-agent settings (issue 12: the default approval policy)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class AgentSettings(BaseModel):
    """``GET``/``PUT /admin/apps/{app_id}/coding-agent/settings``."""

    model_config = ConfigDict(extra="forbid")

    approval_policy: Literal["none", "commands", "patches", "all"] = Field(
        description=(
            "Default for the app's new runs (a run's own approval_policy wins): which tool "
            "calls wait for a person: `commands` (tools that run commands), `patches` "
            "(tools that write files), `all`, `none` (the default). Runs already created "
            "keep theirs."
        )
    )
