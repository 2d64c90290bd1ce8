"""The model registry: models, provider bindings and chat-model resolution.

Contract section 4 with docs/design.md 8.10: the automatic choice is deterministic (tenant before
global, then oldest first) and skips models whose ``status`` is not ``active``.
A binding's key is either sealed (``api_key_ciphertext``: storage never sees a plaintext
key; runtime/secret_box.py seals and opens it) or, for global models, the name of an
environment variable the operator allows (``api_key_env``); migration 0003.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from storage.database import Database
from storage.errors import StorageError
from storage.records import from_record, maybe, returned

ModelStatus = Literal["active", "deprecated", "disabled"]


class ModelNotFound(StorageError):
    """The model no longer exists under the owner the caller checked."""


@dataclass(frozen=True, slots=True)
class Model:
    """A registry row; ``tenant_id is None`` means global."""

    id: uuid.UUID
    tenant_id: uuid.UUID | None
    name: str
    capability_type: str
    status: str
    is_active: bool
    is_default: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class BindingSpec:
    """What a caller supplies to create a binding."""

    provider: str
    provider_model_id: str
    base_url: str
    api_key_env: str | None = None
    priority: int = 0
    is_enabled: bool = True
    api_key_ciphertext: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Binding:
    """How to reach a model: provider, its model id, endpoint and key (sealed, or the name
    of the variable holding it)."""

    id: uuid.UUID
    model_id: uuid.UUID
    provider: str
    provider_model_id: str
    base_url: str
    api_key_env: str | None
    priority: int
    is_enabled: bool
    created_at: datetime
    api_key_ciphertext: bytes | None = field(default=None, repr=False)

    @property
    def has_api_key(self) -> bool:
        """Whether a sealed key is stored (the only thing responses tell about it)."""
        return self.api_key_ciphertext is not None


async def create_model(
    db: Database,
    *,
    tenant_id: uuid.UUID | None,
    name: str,
    model_id: uuid.UUID | None = None,
    capability_type: str = "chat",
    status: ModelStatus = "active",
    is_active: bool = True,
    is_default: bool = False,
    bindings: Sequence[BindingSpec] = (),
) -> tuple[Model, list[Binding]]:
    """Insert a model (global when ``tenant_id`` is None) with its bindings, in one transaction.

    When ``is_default`` is set, other defaults at the same level (same tenant or global, same
    capability) are cleared so at most one default exists per level. ``model_id`` lets the
    caller fix the id beforehand (sealed keys are bound to it); default: a new one.

    Raises:
        ForeignKeyViolation: the tenant does not exist.
    """
    model_id = model_id or uuid.uuid4()
    async with db.transaction() as tx:
        row = await tx.fetchrow(
            "models_insert",
            model_id,
            tenant_id,
            name,
            capability_type,
            status,
            is_active,
            is_default,
        )
        model = returned(Model, row)
        if is_default:
            await tx.execute("models_clear_defaults", tenant_id, capability_type, model_id)
        created = [await _insert_binding(tx, model_id, spec) for spec in bindings]
        return model, created


async def get_model(db: Database, model_id: uuid.UUID) -> Model | None:
    """The model whatever its owner (for server-side use: run execution), or None."""
    return maybe(Model, await db.fetchrow("models_get", model_id))


async def get_visible_model(
    db: Database, *, model_id: uuid.UUID, tenant_id: uuid.UUID
) -> Model | None:
    """The model if it is the tenant's own or global; ``None`` otherwise (other tenants)."""
    return maybe(Model, await db.fetchrow("models_get_visible", model_id, tenant_id))


async def list_visible_models(db: Database, *, tenant_id: uuid.UUID) -> list[Model]:
    """The tenant's models then the global ones, oldest first within each group."""
    return [from_record(Model, r) for r in await db.fetch("models_list_visible", tenant_id)]


async def update_model(
    db: Database,
    model: Model,
    *,
    is_active: bool | None = None,
    is_default: bool | None = None,
    status: ModelStatus | None = None,
    bindings: Sequence[BindingSpec] | None = None,
) -> tuple[Model, list[Binding]]:
    """Change the given fields (``None`` = keep) in one transaction.

    ``bindings``, when given, replaces the model's whole binding set. Setting
    ``is_default`` clears the other defaults at the same level. Authorisation (whose model
    this is) is the caller's job.

    Returns:
        The updated model and its bindings after the change.

    Raises:
        ModelNotFound: the model was deleted or its owner differs from ``model.tenant_id``.
    """
    async with db.transaction() as tx:
        row = await tx.fetchrow(
            "models_update", model.id, is_active, is_default, status, model.tenant_id
        )
        if row is None:
            raise ModelNotFound(str(model.id))
        updated = from_record(Model, row)
        if is_default:
            await tx.execute(
                "models_clear_defaults", model.tenant_id, model.capability_type, model.id
            )
        if bindings is not None:
            await tx.execute("models_bindings_delete", model.id)
            for spec in bindings:
                await _insert_binding(tx, model.id, spec)
        current = await list_bindings(tx, [model.id])
        return updated, current.get(model.id, [])


async def list_bindings(
    db: Database, model_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[Binding]]:
    """Bindings of each model, lowest priority number first; models without any are absent."""
    result: dict[uuid.UUID, list[Binding]] = {}
    for row in await db.fetch("models_bindings_list", list(model_ids)):
        binding = from_record(Binding, row)
        result.setdefault(binding.model_id, []).append(binding)
    return result


async def resolve_chat_model(
    db: Database, *, tenant_id: uuid.UUID, model_id: uuid.UUID | None
) -> Model | None:
    """Pick the chat model a run uses (contract section 4, docs/design.md 8.10).

    Explicit ``model_id``: the model if it is active, capability ``chat`` and the tenant's or
    global; its ``status`` is not checked (as the contract says). Auto (``None``): the
    tenant's default, then the global default, then any tenant model, then any global model,
    oldest first (created_at, id), only those whose status is ``active``.

    Returns:
        The model, or ``None`` when nothing qualifies (the caller answers 400
        ``CODING_AGENT_MODEL_UNAVAILABLE``).
    """
    row = await db.fetchrow("models_resolve", tenant_id, model_id)
    return maybe(Model, row)


async def get_binding(db: Database, model_id: uuid.UUID) -> Binding | None:
    """The enabled binding to use for ``model_id``: lowest ``priority`` number first.

    Priority works like a rank (0 = first choice), ties go to the oldest binding.
    """
    return maybe(Binding, await db.fetchrow("models_binding_best", model_id))


async def get_run_binding(
    db: Database, model_id: uuid.UUID
) -> tuple[Binding, uuid.UUID | None] | None:
    """:func:`get_binding` plus the model's owner (its ``tenant_id``; None: a global
    model), in one statement: what a run's start needs (runtime.model_credentials). None
    when the model does not exist or has no enabled binding."""
    row = await db.fetchrow("models_binding_best", model_id)
    if row is None:
        return None
    return from_record(Binding, row), row["model_tenant_id"]


async def _insert_binding(db: Database, model_id: uuid.UUID, spec: BindingSpec) -> Binding:
    row = await db.fetchrow(
        "models_binding_insert",
        uuid.uuid4(),
        model_id,
        spec.provider,
        spec.provider_model_id,
        spec.base_url,
        spec.api_key_env,
        spec.priority,
        spec.is_enabled,
        spec.api_key_ciphertext,
    )
    return returned(Binding, row)


async def any_model_exists(db: Database) -> bool:
    """Whether the registry holds any model at all (any tenant, or global)."""
    return bool(await db.fetchval("models_any_exists"))


async def bindings_by_provider(db: Database, provider: str) -> list[Binding]:
    """Every binding of ``provider``, oldest first (e.g. the managed local model's)."""
    return [
        from_record(Binding, r) for r in await db.fetch("models_bindings_by_provider", provider)
    ]


async def set_binding_endpoint(
    db: Database,
    binding_id: uuid.UUID,
    *,
    base_url: str,
    provider_model_id: str,
    api_key_env: str | None,
) -> None:
    """Point a binding at a new endpoint (a managed model gets a new port each start)."""
    await db.execute(
        "models_binding_set_endpoint", binding_id, base_url, provider_model_id, api_key_env
    )
