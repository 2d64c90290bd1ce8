"""The app starts, answers health checks and serves its OpenAPI document."""

from __future__ import annotations


async def test_healthz_reports_database_ok(client):
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert await response.get_json() == {"status": "ok", "database": "ok"}


async def test_openapi_lists_the_admin_routes(client):
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    paths = (await response.get_json())["paths"]
    assert "/admin/apps" in paths
    assert "/admin/apps/{app_id}/builder/revisions" in paths
    assert "/admin/models/{model_id}" in paths
    runs = "/admin/apps/{app_id}/coding-agent/runs"
    checkpoints = "/admin/apps/{app_id}/coding-agent/checkpoints"
    expected = [
        runs,
        runs + "/{run_id}",
        runs + "/{run_id}/stream",
        runs + "/{run_id}/resume",
        runs + "/{run_id}/cancel",
        checkpoints,
        checkpoints + "/{checkpoint_id}/restore",
    ]
    for path in expected:
        assert path in paths, path
    stream = paths[runs + "/{run_id}/stream"]["get"]
    assert "Last-Event-ID" in [p["name"] for p in stream["parameters"]]
    create = paths[runs]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"]
