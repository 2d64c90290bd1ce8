"""Chat-model resolution and binding choice (contract 4, docs/design.md 8.10) on a real database."""

from __future__ import annotations

import uuid

from storage import models
from storage.models import BindingSpec


async def _model(db, tenant_id, name, **kwargs):
    created, _ = await models.create_model(db, tenant_id=tenant_id, name=name, **kwargs)
    return created


async def test_auto_prefers_tenant_default_then_global_default(db, seed):
    tenant = await seed.tenant()
    await _model(db, None, "global-plain")
    global_default = await _model(db, None, "global-default", is_default=True)
    await _model(db, tenant, "tenant-plain")
    resolved = await models.resolve_chat_model(db, tenant_id=tenant, model_id=None)
    assert resolved is not None and resolved.id == global_default.id
    tenant_default = await _model(db, tenant, "tenant-default", is_default=True)
    resolved = await models.resolve_chat_model(db, tenant_id=tenant, model_id=None)
    assert resolved is not None and resolved.id == tenant_default.id


async def test_auto_without_defaults_takes_oldest_tenant_model_then_global(db, seed):
    tenant = await seed.tenant()
    oldest_global = await _model(db, None, "g1")
    await _model(db, None, "g2")
    resolved = await models.resolve_chat_model(db, tenant_id=tenant, model_id=None)
    assert resolved is not None and resolved.id == oldest_global.id
    first_tenant = await _model(db, tenant, "t1")
    await _model(db, tenant, "t2")
    for _ in range(3):  # deterministic, not "any"
        resolved = await models.resolve_chat_model(db, tenant_id=tenant, model_id=None)
        assert resolved is not None and resolved.id == first_tenant.id


async def test_auto_skips_inactive_non_chat_non_active_status_and_foreign_models(db, seed):
    tenant, other = await seed.tenant(), await seed.tenant()
    await _model(db, tenant, "deprecated", status="deprecated", is_default=True)
    await _model(db, tenant, "inactive", is_active=False)
    await _model(db, tenant, "embed", capability_type="embedding")
    await _model(db, other, "foreign", is_default=True)
    assert await models.resolve_chat_model(db, tenant_id=tenant, model_id=None) is None
    usable = await _model(db, tenant, "usable")
    resolved = await models.resolve_chat_model(db, tenant_id=tenant, model_id=None)
    assert resolved is not None and resolved.id == usable.id


async def test_explicit_model_must_be_active_chat_and_visible(db, seed):
    tenant, other = await seed.tenant(), await seed.tenant()
    deprecated = await _model(db, tenant, "deprecated", status="deprecated")
    inactive = await _model(db, tenant, "inactive", is_active=False)
    foreign = await _model(db, other, "foreign")
    global_model = await _model(db, None, "global")
    # Contract 4: status is not checked for an explicit choice.
    found = await models.resolve_chat_model(db, tenant_id=tenant, model_id=deprecated.id)
    assert found is not None and found.id == deprecated.id
    found = await models.resolve_chat_model(db, tenant_id=tenant, model_id=global_model.id)
    assert found is not None and found.id == global_model.id
    for refused in (inactive.id, foreign.id, uuid.uuid4()):
        assert await models.resolve_chat_model(db, tenant_id=tenant, model_id=refused) is None


async def test_get_binding_takes_lowest_priority_enabled_binding(db, seed):
    tenant = await seed.tenant()

    def spec(name, priority, enabled=True):
        return BindingSpec("openai", name, "http://x/v1", None, priority, enabled)

    model, _ = await models.create_model(
        db,
        tenant_id=tenant,
        name="m",
        bindings=[spec("ten", 10), spec("disabled-zero", 0, False), spec("five", 5)],
    )
    binding = await models.get_binding(db, model.id)
    assert binding is not None and binding.provider_model_id == "five"
    assert await models.get_binding(db, uuid.uuid4()) is None


async def test_a_runs_binding_comes_with_its_models_owner(db, seed):
    """What a run's start reads in one statement: the best binding and whose model it is
    (a global model's endpoint is trusted; a tenant's goes through the egress policy)."""
    tenant = await seed.tenant()
    spec = BindingSpec("openai", "m", "http://x/v1", None, 0, True)
    own, _ = await models.create_model(db, tenant_id=tenant, name="own", bindings=[spec])
    shared, _ = await models.create_model(db, tenant_id=None, name="global", bindings=[spec])
    unbound = await _model(db, tenant, "unbound")
    found = await models.get_run_binding(db, own.id)
    assert found is not None and found[0].model_id == own.id and found[1] == tenant
    found = await models.get_run_binding(db, shared.id)
    assert found is not None and found[0].model_id == shared.id and found[1] is None
    assert await models.get_run_binding(db, unbound.id) is None
    assert await models.get_run_binding(db, uuid.uuid4()) is None
