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
