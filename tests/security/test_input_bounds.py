"""Integer and size bounds on input (issue 9 item 5): what Postgres cannot store is a 422
naming the field, never a 500."""

from __future__ import annotations

import pytest

from web.schemas.models import INT32_MAX, INT32_MIN

BINDING = {"provider": "openai", "provider_model_id": "m", "base_url": "http://127.0.0.1:9/v1"}


@pytest.mark.parametrize("priority", [INT32_MAX + 1, INT32_MIN - 1, 10**30])
async def test_priority_beyond_int32_is_422_on_create_and_patch(client, owner, priority):
    created = await client.post(
        "/admin/models",
        json={"name": "m", "bindings": [{**BINDING, "priority": priority}]},
        headers=owner.headers,
    )
    assert created.status_code == 422
    item = (await created.get_json())["detail"][0]
    assert item["loc"] == ["body", "bindings", 0, "priority"]

    ok = await client.post(
        "/admin/models", json={"name": "m", "bindings": [BINDING]}, headers=owner.headers
    )
    model = await ok.get_json()
    patched = await client.patch(
        f"/admin/models/{model['id']}",
        json={"bindings": [{**BINDING, "priority": priority}]},
        headers=owner.headers,
    )
    assert patched.status_code == 422
    assert (await patched.get_json())["detail"][0]["loc"] == ["body", "bindings", 0, "priority"]


@pytest.mark.parametrize("priority", [INT32_MAX, INT32_MIN])
async def test_priority_at_the_int32_limits_is_stored(client, owner, priority):
    created = await client.post(
        "/admin/models",
        json={"name": "m", "bindings": [{**BINDING, "priority": priority}]},
        headers=owner.headers,
    )
    assert created.status_code == 200, await created.get_data(as_text=True)
    assert (await created.get_json())["bindings"][0]["priority"] == priority


async def test_oversized_texts_are_422(client, owner, app_and_draft):
    app, _ = app_and_draft
    too_long = {**BINDING, "base_url": "http://127.0.0.1:9/" + "v" * 2048}
    response = await client.post(
        "/admin/models", json={"name": "m", "bindings": [too_long]}, headers=owner.headers
    )
    assert response.status_code == 422
    response = await client.post(
        f"/admin/apps/{app['id']}/coding-agent/runs",
        json={"input": "x" * 100_001, "engine": "scripted"},
        headers=owner.headers,
    )
    assert response.status_code == 422
    assert (await response.get_json())["detail"][0]["loc"] == ["body", "input"]
