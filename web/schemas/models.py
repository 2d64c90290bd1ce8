"""API models for the model registry (contract section 4)."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, Field, RootModel, model_validator

from runtime.settings import ENV_NAME
from storage.models import Binding, BindingSpec, Model
from web.schemas.common import NoBool, UtcDatetime

Status = Literal["active", "deprecated", "disabled"]

# Bounds (issue 9 item 5): ``priority`` is a Postgres ``integer``; the texts are bounded so
# one request cannot store megabytes per binding; a model has a handful of bindings at most.
INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1
MAX_BINDINGS = 16
MAX_BASE_URL = 2048
MAX_API_KEY = 4096


class BindingIn(BaseModel):
    """A provider binding: how to call the model (docs/security.md, "Model credentials").

    The key is write-only: ``api_key`` is stored encrypted and never returned (responses
    say ``has_api_key``). ``api_key_env`` is for global models only, and only for names in
    the operator's ``RUNWRIGHT_MODEL_KEY_ENV_ALLOWLIST``. A tenant model's ``base_url`` must
    pass the egress policy. At most one of ``api_key`` and ``api_key_env``.
    """

    provider: str = Field(min_length=1, max_length=64, description="e.g. 'openai', 'local'.")
    provider_model_id: str = Field(
        min_length=1, max_length=256, description="The provider's model name."
    )
    base_url: str = Field(
        min_length=1,
        max_length=MAX_BASE_URL,
        description=(
            "OpenAI-compatible endpoint base URL (http or https, no credentials). For a "
            "tenant model the host must be in the operator's egress allow-list and resolve "
            "only to public addresses (loopback, private, link-local and metadata addresses "
            "are refused unless the operator allows them)."
        ),
    )
    api_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_API_KEY,
        description=(
            "Write-only: the API key, stored encrypted and never returned. On PATCH, a "
            "binding that omits it keeps the key of the replaced binding with the same "
            "base_url; null clears it."
        ),
        json_schema_extra={"writeOnly": True},
    )
    api_key_env: str | None = Field(
        default=None,
        max_length=128,
        pattern=ENV_NAME.pattern,
        description=(
            "Global models only: an environment variable the operator allows "
            "(RUNWRIGHT_MODEL_KEY_ENV_ALLOWLIST) holding the key."
        ),
    )
    priority: Annotated[int, NoBool] = Field(
        default=0,
        ge=INT32_MIN,
        le=INT32_MAX,
        description="Lower is preferred (0 = first choice); a 32-bit integer.",
    )
    is_enabled: bool = True

    @model_validator(mode="after")
    def _one_key_source(self) -> BindingIn:
        if self.api_key is not None and self.api_key_env is not None:
            raise ValueError("give api_key or api_key_env, not both")
        return self

    def spec(self, *, api_key_ciphertext: bytes | None = None) -> BindingSpec:
        """As a storage spec, with the key already sealed by the caller."""
        return BindingSpec(
            provider=self.provider,
            provider_model_id=self.provider_model_id,
            base_url=self.base_url,
            api_key_env=self.api_key_env,
            priority=self.priority,
            is_enabled=self.is_enabled,
            api_key_ciphertext=api_key_ciphertext,
        )


class BindingOut(BaseModel):
    """A stored binding. The key itself is never returned."""

    id: uuid.UUID
    provider: str
    provider_model_id: str
    base_url: str
    api_key_env: str | None
    has_api_key: bool = Field(description="Whether an API key is stored (write-only).")
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
