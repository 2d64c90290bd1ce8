"""Standard security headers on every response (issue 9 item 5): success, error, stream,
docs and routing answers alike; no-store on authenticated API responses; no Server header
from the real server."""

from __future__ import annotations

import httpx

from tests.support.runs import read_stream, runs_url
from tests.support.server import hypercorn_on_loopback
from web.security_headers import API_CSP

COMMON = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


def _assert_common(headers, what: str) -> None:
    for name, value in COMMON.items():
        assert headers.get(name) == value, f"{what}: {name}={headers.get(name)!r}"
    csp = headers.get("content-security-policy", "")
    assert "frame-ancestors 'none'" in csp, what
    assert "default-src 'none'" in csp, what


async def test_headers_on_success_error_and_routing_answers(client, owner, app_and_draft):
    app, _ = app_and_draft
    cases = [
        ("GET", "/admin/apps", owner.headers, 200),
        ("GET", f"/admin/apps/{app['id']}", owner.headers, 200),
        ("GET", "/admin/apps", {}, 401),
        ("GET", "/admin/apps/not-a-uuid", owner.headers, 422),
        ("GET", f"/admin/apps/{app['id']}/nothing", owner.headers, 404),
        ("DELETE", "/admin/apps", owner.headers, 405),
        ("POST", "/admin/models", {**owner.headers, "Content-Type": "application/json"}, 422),
    ]
    for method, path, headers, status in cases:
        response = await client.open(path, method=method, headers=headers)
        assert response.status_code == status, (method, path)
        _assert_common(response.headers, f"{method} {path}")
        assert response.headers["Content-Security-Policy"] == API_CSP
        assert response.headers["Cache-Control"] == "no-store", (method, path)


async def test_public_routes_get_the_headers_without_no_store(client):
    for path in ("/healthz", "/openapi.json", "/docs", "/docs/assets/swagger-ui.css"):
        response = await client.get(path)
        assert response.status_code == 200, path
        _assert_common(response.headers, path)
        assert "no-store" not in response.headers.get("Cache-Control", ""), path


async def test_stream_keeps_no_cache_and_gains_no_store(client, owner, app_and_draft):
    app, _ = app_and_draft
    created = await client.post(
        runs_url(app["id"]),
        json={"input": "hi", "engine": "scripted", "script": [{"delta": "x"}]},
        headers=owner.headers,
    )
    run = await created.get_json()
    response = await client.get(runs_url(app["id"], f"/{run['run_id']}/stream"),
                                headers=owner.headers)  # fmt: skip
    assert response.status_code == 200
    await response.get_data()
    cache = [v.strip() for v in response.headers["Cache-Control"].split(",")]
    assert "no-cache" in cache and "no-store" in cache
    _assert_common(response.headers, "stream")
    await read_stream(client, app["id"], run["run_id"], owner.headers)


async def test_real_server_sends_no_server_header(settings):
    async with hypercorn_on_loopback(settings) as (base, _):
        async with httpx.AsyncClient(base_url=base) as http:
            for path in ("/healthz", "/admin/apps", "/nowhere"):
                response = await http.get(path)
                assert "server" not in response.headers, path
                _assert_common(response.headers, path)
