"""API models for the model registry (contract section 4)."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, Field, RootModel

from storage.models import Binding, BindingSpec, Model
from web.schemas.common import UtcDatetime

Status = Literal["active", "deprecated", "disabled"]

# Bounds (issue 9 item 5): ``priority`` is a Postgres ``integer``; the texts are bounded so
# one request cannot store megabytes per binding; a model has a handful of bindings at most.
INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1
MAX_BINDINGS = 16


class BindingIn(BaseModel):
    """A provider binding: how to call the model. Keys are never stored, only the env name."""

    provider: str = Field(min_length=1, max_length=64, description="e.g. 'openai', 'local'.")
    provider_model_id: str = Field(
        min_length=1, max_length=256, description="The provider's model name."
    )
    base_url: str = Field(
        min_length=1, max_length=2048, description="OpenAI-compatible endpoint base URL."
    )
    api_key_env: str | None = Field(
        default=None,
        max_length=256,
        description="Name of the environment variable holding the API key.",
    )
    priority: int = Field(
        default=0,
        ge=INT32_MIN,
        le=INT32_MAX,
        description="Lower is preferred (0 = first choice); a 32-bit integer.",
    )
    is_enabled: bool = True

    def spec(self) -> BindingSpec:
        """As a storage spec."""
        return BindingSpec(**self.model_dump())


class BindingOut(BaseModel):
    """A stored binding."""

    id: uuid.UUID
    provider: str
    provider_model_id: str
    base_url: str
    api_key_env: str | None
    priority: int
    is_enabled: bool
    created_at: UtcDatetime


class ModelCreateRequest(BaseModel):
    """``POST /admin/models``."""

    name: str = Field(min_length=1, max_length=200)
    scope: Literal["tenant", "global"] = Field(
        default="tenant",
        description="'tenant' = the request tenant's model; 'global' needs a platform admin.",
    )
    capability_type: str = Field(default="chat", min_length=1, max_length=64)
    status: Status = "active"
    is_active: bool = True
    is_default: bool = Field(
        default=False, description="Clears other defaults of the same tenant (or global)."
    )
    bindings: list[BindingIn] = Field(default_factory=list, max_length=MAX_BINDINGS)


class ModelPatchRequest(BaseModel):
    """``PATCH /admin/models/{model_id}``: omitted fields are unchanged."""

    is_active: bool | None = None
    is_default: bool | None = None
    status: Status | None = None
    bindings: list[BindingIn] | None = Field(
        default=None,
        max_length=MAX_BINDINGS,
        description="When given, replaces every binding of the model.",
    )


class ModelResponse(BaseModel):
    """A registry model with its bindings (lowest priority number first)."""

    id: uuid.UUID
    tenant_id: uuid.UUID | None = Field(description="null for a global model.")
    name: str
    capability_type: str
    status: Status
    is_active: bool
    is_default: bool
    created_at: UtcDatetime
    updated_at: UtcDatetime
    bindings: list[BindingOut]

    @classmethod
    def of(cls, model: Model, bindings: list[Binding]) -> ModelResponse:
        """Build from storage rows."""
        data = {name: getattr(model, name) for name in Model.__dataclass_fields__}
        data["bindings"] = [BindingOut.model_validate(b, from_attributes=True) for b in bindings]
        return cls.model_validate(data)


class ModelListResponse(RootModel[list[ModelResponse]]):
    """``GET /admin/models``: a list, tenant models first, then global; oldest first."""
