"""Bad input is always a documented 4xx with a JSON ``detail``, never a 500 (docs/design.md 8.6)."""

from __future__ import annotations

import uuid

import pytest
from quart import Quart

from tests.support.api import create_app_via_api
from tests.support.runs import create_run, runs_url, wait_status
from web.errors import ApiError


@pytest.fixture(autouse=True)
def _no_unhandled_errors(request, caplog):
    """Bad input must be answered by a specific handler, never by the catch-all."""
    yield
    if request.node.get_closest_marker("expects_internal_error") is None:
        assert not [r for r in caplog.records if r.name == "web.errors"]


async def _json(response):
    assert response.content_type == "application/json"
    return await response.get_json()


async def test_malformed_json_is_422(client, owner):
    response = await client.post(
        "/admin/apps",
        data=b'{"name": ',
        headers={**owner.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    detail = (await _json(response))["detail"]
    assert detail[0]["type"] == "json_invalid"
    assert detail[0]["loc"][0] == "body"


async def test_missing_body_is_422(client, owner):
    response = await client.post("/admin/apps", headers=owner.headers)
    assert response.status_code == 422
    assert (await _json(response))["detail"] == [
        {"type": "missing", "loc": ["body"], "msg": "Field required", "input": None}
    ]


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"slug": "ok"}, ["body", "name"]),
        ({"name": 5, "slug": "ok"}, ["body", "name"]),
        ({"name": "x", "slug": "Not A Slug"}, ["body", "slug"]),
        ([1, 2], ["body"]),
    ],
)
async def test_wrong_types_are_422_with_locations(client, owner, body, loc):
    response = await client.post("/admin/apps", json=body, headers=owner.headers)
    assert response.status_code == 422
    detail = (await _json(response))["detail"]
    assert detail[0]["loc"] == loc
    assert {"type", "loc", "msg", "input"} <= set(detail[0])


async def test_non_string_file_contents_are_422(client, owner):
    app, _ = await create_app_via_api(client, owner.headers)
    response = await client.post(
        f"/admin/apps/{app['id']}/builder/revisions",
        json={"files": {"src/main.tsx": 42}},
        headers=owner.headers,
    )
    assert response.status_code == 422
    assert (await _json(response))["detail"][0]["loc"] == ["body", "files", "src/main.tsx"]
    response = await client.post(
        f"/admin/apps/{app['id']}/builder/revisions",
        json={"files": {}, "base_revision_id": "nope"},
        headers=owner.headers,
    )
    assert response.status_code == 422
    assert (await _json(response))["detail"][0]["loc"] == ["body", "base_revision_id"]


@pytest.mark.parametrize(
    "path",
    [
        "/admin/apps/not-a-uuid",
        "/admin/apps/123/builder/state",
        f"/admin/apps/{uuid.uuid4()}/revisions/xyz",
    ],
)
async def test_non_uuid_path_ids_are_422(client, owner, path):
    response = await client.get(path, headers=owner.headers)
    assert response.status_code == 422
    detail = (await _json(response))["detail"]
    assert detail[0]["type"] == "uuid_parsing"
    assert detail[0]["loc"][0] == "path"


async def test_non_uuid_model_id_is_422(client, owner):
    response = await client.patch("/admin/models/abc", json={}, headers=owner.headers)
    assert response.status_code == 422
    assert (await _json(response))["detail"][0]["loc"] == ["path", "model_id"]


async def test_unknown_route_is_json_404(client):
    response = await client.get("/nope")
    assert response.status_code == 404
    assert await _json(response) == {"detail": "Not Found"}


async def test_wrong_method_is_json_405(client):
    response = await client.delete("/admin/apps")
    assert response.status_code == 405
    assert await _json(response) == {"detail": "Method Not Allowed"}
    assert "GET" in response.headers["Allow"]


@pytest.mark.expects_internal_error
async def test_unexpected_errors_are_json_500_without_internals(app: Quart, caplog):
    @app.get("/__boom")
    async def boom():
        raise RuntimeError("secret internals")

    response = await app.test_client().get("/__boom")
    assert response.status_code == 500
    assert await _json(response) == {"detail": "Internal server error"}
    assert "secret internals" in caplog.text


async def test_api_error_carries_objects(app: Quart):
    @app.get("/__api_error")
    async def api_error():
        raise ApiError(418, {"code": "TEAPOT", "message": "short and stout"})

    response = await app.test_client().get("/__api_error")
    assert response.status_code == 418
    assert await _json(response) == {"detail": {"code": "TEAPOT", "message": "short and stout"}}


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,  # nesting deeper than the decoder's recursion limit
        b'{"name": "x", "slug": "ok", "extra": NaN}',  # not JSON; jsonb refuses it too
        b'{"name": "x", "slug": "ok", "extra": -Infinity}',
    ],
)
async def test_undecodable_json_is_422(client, owner, body):
    response = await client.post(
        "/admin/apps", data=body, headers={**owner.headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert (await _json(response))["detail"][0]["type"] == "json_invalid"


@pytest.mark.parametrize(
    ("route", "body", "loc"),
    [
        ("/admin/apps", b'{"name": "a\\u0000b", "slug": "nul"}', ["body", "name"]),
        ("/admin/apps", b'{"name": "\\ud800", "slug": "sur"}', ["body", "name"]),
        ("runs", b'{"input": "a\\u0000b"}', ["body", "input"]),
        (
            "runs",
            b'{"input": "x", "messages": [{"role": "user", "content": "\\udfff"}]}',
            ["body", "messages", 0, "content"],
        ),
        (
            "revisions",
            b'{"files": {"src/main.tsx": "x\\u0000"}}',
            ["body", "files", "src/main.tsx"],
        ),
        ("revisions", b'{"files": {"src/a\\u0000.tsx": "x"}}', ["body", "files"]),
    ],
)
async def test_strings_postgres_cannot_store_are_422(client, owner, route, body, loc):
    """NUL characters and unpaired surrogates cannot be stored as text or jsonb: a 422
    naming the field, not a 500 from the database."""
    app, _ = await create_app_via_api(client, owner.headers)
    url = {
        "runs": f"/admin/apps/{app['id']}/coding-agent/runs",
        "revisions": f"/admin/apps/{app['id']}/builder/revisions",
    }.get(route, route)
    response = await client.post(
        url, data=body, headers={**owner.headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 422
    detail = (await _json(response))["detail"]
    assert detail[0]["loc"] == loc
    assert detail[0]["type"] == "string_unstorable"


async def test_resume_payload_with_nul_is_422_at_once(client, owner):
    """The payload is checked before it reaches the run's actor (it used to crash the actor
    and answer 503 after a minute), and the run stays paused."""
    app, _ = await create_app_via_api(client, owner.headers)
    run = await create_run(client, app["id"], owner.headers, input="x", engine="scripted",
                           script=[{"pause": {}}, {"delta": "after"}])  # fmt: skip
    await wait_status(client, app["id"], run["run_id"], owner.headers, {"paused"})
    response = await client.post(
        runs_url(app["id"], f"/{run['run_id']}/resume"),
        data=b'{"payload": {"k": "\\u0000"}}',
        headers={**owner.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert (await _json(response))["detail"][0]["loc"] == ["body", "payload", "k"]
    response = await client.post(runs_url(app["id"], f"/{run['run_id']}/resume"),
                                 json={"payload": {"k": "ok"}}, headers=owner.headers)  # fmt: skip
    assert response.status_code == 200
    done = await wait_status(client, app["id"], run["run_id"], owner.headers, {"completed"})
    assert done["status"] == "completed"


@pytest.mark.parametrize(
    ("query", "headers"),
    [
        ("?after=2147483648", {}),
        ("?after=999999999999999999999999", {}),
        ("", {"Last-Event-ID": "2147483648"}),
        ("", {"Last-Event-ID": "9" * 30}),
    ],
)
async def test_stream_cursor_beyond_any_seq_is_422(client, owner, query, headers):
    """An event cursor past the stored seq range is a 422, not a 200 whose body breaks."""
    app, _ = await create_app_via_api(client, owner.headers)
    created = await client.post(
        f"/admin/apps/{app['id']}/coding-agent/runs",
        json={"input": "x", "engine": "scripted", "script": []},
        headers=owner.headers,
    )
    run_id = (await created.get_json())["run_id"]
    response = await client.get(
        f"/admin/apps/{app['id']}/coding-agent/runs/{run_id}/stream{query}",
        headers={**owner.headers, **headers},
    )
    assert response.status_code == 422
    assert (await _json(response))["detail"][0]["loc"][0] in ("query", "header")
