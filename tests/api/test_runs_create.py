"""Creating, listing and getting runs (contract 1.1-1.4, section 4, section 5; contract
section 10 test_run_lifecycle scenarios 2-10)."""

from __future__ import annotations

import uuid

from runtime.engine import EngineUnsupportedRuntime
from storage import models as models_store
from storage.runs import RunStore
from tests.support.api import create_app_via_api
from tests.support.fake_engines import FakeOpenCodeEngine
from tests.support.runs import create_run, runs_url

RUN_FIELDS = {
    "run_id", "status", "execution_engine", "surface", "published_app_id", "base_revision_id",
    "result_revision_id", "checkpoint_revision_id", "requested_model_id", "resolved_model_id",
    "error", "created_at", "started_at", "completed_at",
    "session_id",  # additive (docs/design.md 10): null for a run without a session
    # additive (issue 12, approvals)
    "approval_policy", "pending_approval",
    # additive (issue 13, per-run tool selection of the native engine)
    "tools",
}  # fmt: skip


async def test_create_list_and_get_a_run(client, owner, app_and_draft, make_model, db):
    app, draft = app_and_draft
    await make_model(owner.tenant_id, default=True)
    body = {
        "input": "  Add a dark mode toggle  ",
        "base_revision_id": draft["id"],
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"},
            {"role": "tool", "content": "dropped"},
            {"role": "USER", "content": "   "},
        ],
    }
    response = await client.post(runs_url(app["id"]), json=body, headers=owner.headers)
    assert response.status_code == 200
    run = await response.get_json()
    assert set(run) == RUN_FIELDS | {"usage"}  # contract 1.1 plus the additive usage
    assert run["usage"]["model_calls"] == 0 and run["usage"]["total_tokens"] is None
    assert run["status"] == "queued"
    assert run["approval_policy"] == "none" and run["pending_approval"] is None
    assert run["tools"] is None  # no selection: the engine offers its whole toolpack
    assert run["published_app_id"] == app["id"]
    assert run["base_revision_id"] == draft["id"]
    assert run["execution_engine"] == "native"
    assert run["surface"] == "published_app_coding_agent"
    assert run["requested_model_id"] is None
    assert run["created_at"].endswith("+00:00")

    listed = await client.get(runs_url(app["id"], "?limit=10"), headers=owner.headers)
    assert listed.status_code == 200
    assert [r["run_id"] for r in await listed.get_json()] == [run["run_id"]]

    got = await client.get(runs_url(app["id"], f"/{run['run_id']}"), headers=owner.headers)
    assert (await got.get_json())["run_id"] == run["run_id"]

    stored = await RunStore(db).get(uuid.UUID(run["run_id"]))
    assert stored is not None
    assert stored["input_params"]["input"] == "Add a dark mode toggle"
    assert stored["input_params"]["messages"] == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "Add a dark mode toggle"},
    ]


async def test_list_is_newest_first_and_limited(client, owner, app_and_draft):
    app, _ = app_and_draft
    ids = [
        (await create_run(client, app["id"], owner.headers, input=f"r{i}", engine="scripted"))[
            "run_id"
        ]
        for i in range(3)
    ]
    listed = await client.get(runs_url(app["id"], "?limit=2"), headers=owner.headers)
    assert [r["run_id"] for r in await listed.get_json()] == ids[::-1][:2]
    for bad in ("0", "101", "x"):
        response = await client.get(runs_url(app["id"], f"?limit={bad}"), headers=owner.headers)
        assert response.status_code == 422


async def test_stale_base_revision_is_a_conflict(client, owner, app_and_draft):
    app, draft = app_and_draft
    response = await client.post(
        runs_url(app["id"]),
        json={"input": "x", "base_revision_id": str(uuid.uuid4()), "engine": "scripted"},
        headers=owner.headers,
    )
    assert response.status_code == 409
    detail = (await response.get_json())["detail"]
    assert detail["code"] == "REVISION_CONFLICT"
    assert detail["latest_revision_id"] == draft["id"]
    assert detail["message"] == "Draft revision is stale"
    assert "field" not in detail


async def test_conflict_wins_over_blank_input(client, owner, app_and_draft):
    app, _ = app_and_draft
    response = await client.post(
        runs_url(app["id"]),
        json={"input": "   ", "base_revision_id": str(uuid.uuid4())},
        headers=owner.headers,
    )
    assert response.status_code == 409


async def test_blank_input_is_refused(client, owner, app_and_draft):
    app, _ = app_and_draft
    response = await client.post(runs_url(app["id"]), json={"input": "  "}, headers=owner.headers)
    assert response.status_code == 400
    assert await response.get_json() == {"detail": "input is required"}


async def test_missing_input_and_bad_types_are_422(client, owner, app_and_draft):
    app, _ = app_and_draft
    for body in (
        {},
        {"input": 5},
        {"input": "x", "messages": [{"role": "user", "content": 3}]},
        {"input": "x", "engine": "gpt"},
        {"input": "x", "model_id": "not-a-uuid"},
    ):
        response = await client.post(runs_url(app["id"]), json=body, headers=owner.headers)
        assert response.status_code == 422, body
        assert isinstance((await response.get_json())["detail"], list)


async def test_unknown_model_is_unavailable(client, owner, app_and_draft):
    app, _ = app_and_draft
    response = await client.post(
        runs_url(app["id"]), json={"input": "x", "model_id": str(uuid.uuid4())},
        headers=owner.headers,
    )  # fmt: skip
    assert response.status_code == 400
    detail = (await response.get_json())["detail"]
    assert detail["code"] == "CODING_AGENT_MODEL_UNAVAILABLE"
    assert detail["field"] == "model_id"
    assert "unavailable" in detail["message"]


async def test_no_model_at_all_is_unavailable(client, owner, app_and_draft):
    app, _ = app_and_draft
    response = await client.post(runs_url(app["id"]), json={"input": "x"}, headers=owner.headers)
    assert response.status_code == 400
    detail = (await response.get_json())["detail"]
    assert detail == {
        "code": "CODING_AGENT_MODEL_UNAVAILABLE",
        "field": "model_id",
        "message": "No active chat model is available for this tenant.",
    }


async def test_another_tenants_model_is_unavailable(client, owner, seed, app_and_draft, make_model):
    app, _ = app_and_draft
    other = await seed.tenant()
    foreign = await make_model(other, default=True)
    response = await client.post(
        runs_url(app["id"]), json={"input": "x", "model_id": str(foreign)}, headers=owner.headers
    )
    assert response.status_code == 400


async def test_opencode_disabled_is_engine_unavailable(client, owner, app_and_draft, make_model):
    app, _ = app_and_draft
    await make_model(owner.tenant_id, default=True)
    response = await client.post(
        runs_url(app["id"]), json={"input": "x", "engine": "opencode"}, headers=owner.headers
    )
    assert response.status_code == 400
    detail = (await response.get_json())["detail"]
    assert detail["code"] == "CODING_AGENT_ENGINE_UNAVAILABLE"
    assert detail["field"] == "engine"
    assert detail["message"].startswith("OpenCode engine is unavailable: ")


async def test_opencode_without_local_workspace_is_unsupported_runtime(
    client, owner, services, app_and_draft, make_model
):
    app, _ = app_and_draft
    await make_model(owner.tenant_id, default=True)
    services.runs.engines["opencode"] = FakeOpenCodeEngine(
        preflight_error=EngineUnsupportedRuntime(
            "OpenCode engine requires a locally resolvable workspace path."
        )
    )
    response = await client.post(
        runs_url(app["id"]), json={"input": "x", "engine": "opencode"}, headers=owner.headers
    )
    assert response.status_code == 400
    detail = (await response.get_json())["detail"]
    assert detail["code"] == "CODING_AGENT_ENGINE_UNSUPPORTED_RUNTIME"
    assert detail["field"] == "engine"


async def test_opencode_engine_and_resolved_model_are_persisted(
    client, owner, services, app_and_draft, make_model, db
):
    app, _ = app_and_draft
    model_id = await make_model(owner.tenant_id, default=True)
    services.runs.engines["opencode"] = FakeOpenCodeEngine()
    run = await create_run(client, app["id"], owner.headers, input="x", engine="opencode")
    assert run["execution_engine"] == "opencode"
    stored = await RunStore(db).get(uuid.UUID(run["run_id"]))
    assert stored["execution_engine"] == "opencode"
    assert stored["resolved_model_id"] == model_id
    assert stored["input_params"]["context"]["opencode_workspace_path"] == "/fake/workspace"


async def test_explicit_model_is_requested_and_resolved(client, owner, app_and_draft, make_model):
    app, _ = app_and_draft
    model_id = await make_model(owner.tenant_id)
    run = await create_run(client, app["id"], owner.headers, input="x", model_id=str(model_id))
    assert run["requested_model_id"] == run["resolved_model_id"] == str(model_id)


async def test_pinned_model_survives_default_change(client, owner, app_and_draft, make_model, db):
    app, _ = app_and_draft
    first = await make_model(owner.tenant_id, default=True)
    run = await create_run(client, app["id"], owner.headers, input="x")
    assert run["requested_model_id"] is None
    assert run["resolved_model_id"] == str(first)
    second = await make_model(owner.tenant_id, default=True)  # becomes the tenant default
    await models_store.resolve_chat_model(db, tenant_id=owner.tenant_id, model_id=None)
    stored = await RunStore(db).get(uuid.UUID(run["run_id"]))
    assert stored["resolved_model_id"] == first != second
    later = await create_run(client, app["id"], owner.headers, input="y")
    assert later["resolved_model_id"] == str(second)


async def test_auto_choice_prefers_tenant_then_global_and_skips_inactive_status(
    client, owner, app_and_draft, make_model
):
    app, _ = app_and_draft
    await make_model(None, default=True, status="deprecated")
    global_default = await make_model(None, default=True)
    run = await create_run(client, app["id"], owner.headers, input="x")
    assert run["resolved_model_id"] == str(global_default)
    tenant_default = await make_model(owner.tenant_id, default=True)
    run = await create_run(client, app["id"], owner.headers, input="x")
    assert run["resolved_model_id"] == str(tenant_default)


async def test_run_of_another_tenant_or_app_is_not_found(client, owner, seed, app_and_draft):
    app, _ = app_and_draft
    run = await create_run(client, app["id"], owner.headers, input="x", engine="scripted")
    intruder = await seed.tenant_admin()
    other_app, _ = await create_app_via_api(client, intruder.headers)
    for path in ("", "/stream", "/cancel", "/resume"):
        url = runs_url(other_app["id"], f"/{run['run_id']}{path}")
        method = client.post if path in ("/cancel", "/resume") else client.get
        kwargs = {"json": {}} if path == "/resume" else {}
        response = await method(url, headers=intruder.headers, **kwargs)
        assert response.status_code == 404, path
        assert await response.get_json() == {"detail": "Coding-agent run not found"}
    # the owner's app id with the intruder's tenant: the app itself is not found
    response = await client.get(runs_url(app["id"], f"/{run['run_id']}"), headers=intruder.headers)
    assert response.status_code == 404
    assert await response.get_json() == {"detail": "Published app not found"}


async def test_non_uuid_ids_are_422(client, owner, app_and_draft):
    app, _ = app_and_draft
    for url in (
        runs_url("nope"),
        runs_url(app["id"], "/nope"),
        runs_url(app["id"], "/nope/stream"),
    ):
        response = await client.get(url, headers=owner.headers)
        assert response.status_code == 422, url


async def test_a_malformed_script_is_422(client, owner, app_and_draft):
    app, _ = app_and_draft
    for script in ([{"sleep_ms": "abc"}], [{"delta": 5}], [{"deltas": "ab"}], [{"plan": 1}],
                   [{"delta": "a", "delay_ms": -1}], [{"nope": 1}], [3]):  # fmt: skip
        response = await client.post(
            runs_url(app["id"]), json={"input": "x", "engine": "scripted", "script": script},
            headers=owner.headers,
        )  # fmt: skip
        assert response.status_code == 422, script
        assert (await response.get_json())["detail"][0]["loc"][:2] == ["body", "script"]


async def test_checkpoints_of_another_tenant_are_out_of_reach(client, owner, seed, app_and_draft):
    app, draft = app_and_draft
    intruder = await seed.tenant_admin()
    other_app, _ = await create_app_via_api(client, intruder.headers)
    listed = await client.get(f"/admin/apps/{app['id']}/coding-agent/checkpoints",
                              headers=intruder.headers)  # fmt: skip
    assert listed.status_code == 404
    assert await listed.get_json() == {"detail": "Published app not found"}
    # the owner's revision restored into the intruder's own app: not a revision of that app
    restore = await client.post(
        f"/admin/apps/{other_app['id']}/coding-agent/checkpoints/{draft['id']}/restore",
        json={}, headers=intruder.headers,
    )  # fmt: skip
    assert restore.status_code == 404
    assert await restore.get_json() == {"detail": "Revision not found"}
