"""The model registry routes: tenant scoping, global models, defaults, bindings."""

from __future__ import annotations

import uuid

import pytest

BINDING = {
    "provider": "openai",
    "provider_model_id": "gpt-test",
    "base_url": "http://127.0.0.1:9/v1",
    "api_key": "sk-test-registry-key",
}


async def _create(client, headers, **body):
    payload = {"name": "m", "bindings": [BINDING], **body}
    return await client.post("/admin/models", json=payload, headers=headers)


@pytest.fixture
async def platform_admin(seed, owner):
    """A platform admin acting in owner's tenant."""
    admin_id = await seed.user(platform_admin=True)
    return seed.headers_for(admin_id, owner.tenant_id, platform_admin=True, org_role=None)


async def test_tenant_admin_creates_and_lists_tenant_models(client, owner):
    response = await _create(client, owner.headers, name="tenant-chat")
    assert response.status_code == 200
    model = await response.get_json()
    assert model["tenant_id"] == str(owner.tenant_id)
    assert model["status"] == "active" and model["is_active"] and not model["is_default"]
    assert [b["provider_model_id"] for b in model["bindings"]] == ["gpt-test"]
    assert model["bindings"][0]["has_api_key"] is True
    assert model["bindings"][0]["api_key_env"] is None
    assert "api_key" not in model["bindings"][0]
    listed = await (await client.get("/admin/models", headers=owner.headers)).get_json()
    assert [m["id"] for m in listed] == [model["id"]]


async def test_tenants_cannot_see_or_patch_each_others_models(client, seed, owner):
    theirs = await (await _create(client, owner.headers)).get_json()
    other = await seed.tenant_admin()
    listed = await (await client.get("/admin/models", headers=other.headers)).get_json()
    assert listed == []
    response = await client.patch(
        f"/admin/models/{theirs['id']}", json={"is_active": False}, headers=other.headers
    )
    assert response.status_code == 404
    assert (await response.get_json())["detail"] == "Model not found"


async def test_global_models_need_a_platform_admin(client, owner, platform_admin):
    response = await _create(client, owner.headers, scope="global")
    assert response.status_code == 403
    assert (await response.get_json())["detail"] == "Platform admin required for global models"
    created = await _create(client, platform_admin, scope="global", name="global-chat")
    assert created.status_code == 200
    global_model = await created.get_json()
    assert global_model["tenant_id"] is None
    # Visible to tenant admins, tenant models first.
    mine = await (await _create(client, owner.headers, name="mine")).get_json()
    listed = await (await client.get("/admin/models", headers=owner.headers)).get_json()
    assert [m["id"] for m in listed] == [mine["id"], global_model["id"]]
    # ... but not changeable by them.
    response = await client.patch(
        f"/admin/models/{global_model['id']}", json={"is_default": True}, headers=owner.headers
    )
    assert response.status_code == 403
    response = await client.patch(
        f"/admin/models/{global_model['id']}", json={"is_default": True}, headers=platform_admin
    )
    assert response.status_code == 200


async def test_setting_default_clears_other_defaults_at_the_same_level(client, owner):
    first = await (await _create(client, owner.headers, name="a", is_default=True)).get_json()
    second = await (await _create(client, owner.headers, name="b")).get_json()
    response = await client.patch(
        f"/admin/models/{second['id']}", json={"is_default": True}, headers=owner.headers
    )
    assert (await response.get_json())["is_default"] is True
    listed = await (await client.get("/admin/models", headers=owner.headers)).get_json()
    defaults = {m["id"]: m["is_default"] for m in listed}
    assert defaults == {first["id"]: False, second["id"]: True}


async def test_patch_changes_status_and_replaces_bindings(client, owner):
    model = await (await _create(client, owner.headers)).get_json()
    new_binding = {**BINDING, "provider_model_id": "other", "priority": 5}
    response = await client.patch(
        f"/admin/models/{model['id']}",
        json={"status": "deprecated", "is_active": False, "bindings": [new_binding]},
        headers=owner.headers,
    )
    assert response.status_code == 200
    patched = await response.get_json()
    assert patched["status"] == "deprecated"
    assert patched["is_active"] is False
    assert [(b["provider_model_id"], b["priority"]) for b in patched["bindings"]] == [("other", 5)]


async def test_invalid_model_fields_are_422(client, owner):
    response = await _create(client, owner.headers, status="retired")
    assert response.status_code == 422
    detail = (await response.get_json())["detail"]
    assert detail[0]["loc"] == ["body", "status"]
    response = await _create(client, owner.headers, bindings=[{**BINDING, "priority": True}])
    assert response.status_code == 422  # a boolean is not a priority (lax mode read it as 1)
    assert (await response.get_json())["detail"][0]["loc"][-1] == "priority"
    response = await client.patch(
        f"/admin/models/{uuid.uuid4()}", json={"is_active": True}, headers=owner.headers
    )
    assert response.status_code == 404


async def test_member_cannot_use_model_routes(client, seed, owner):
    member = await seed.member(owner.tenant_id, role="member")
    response = await client.get("/admin/models", headers=member.headers)
    assert response.status_code == 403
    assert (await response.get_json())["detail"] == "Missing required scopes: models.read"
