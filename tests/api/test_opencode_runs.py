"""OpenCode runs end to end through the HTTP API: a real managed ``opencode serve`` and the
scripted OpenAI-compatible server registered as the tenant's default model (contract 1.2,
1.7, 3.3, 6; section 10 scenarios 5, 6, 7, 15 and 17).

Needs the pinned binary (``runwright opencode install``); those tests are
marked ``opencode`` and skipped without it. Most tests attach the app's OpenCode engine to
one managed server shared by the module (``opencode_mode`` "shared": the app's engine gets
the server's URL, password and provider config directory). Tests that need the app itself
to own the process (its lifespan starts and stops it, a test freezes it) use "own"; the
engine-disabled test uses "disabled" and needs no binary.
"""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import pytest_asyncio

from runtime.engines.opencode import OpenCodeEngine
from runtime.settings import Settings
from storage.runs import RunStore
from tests.support.api import create_app_via_api
from tests.support.fixtures_openai import scripted_openai  # noqa: F401 - fixture
from tests.support.opencode import FAST_OPENCODE, binary_missing, started_engine, warm_dir
from tests.support.runs import (
    LiveStream,
    create_run,
    decide,
    read_stream,
    runs_url,
    types,
    wait_removed,
    wait_status,
)
from tests.support.scripted_openai import (
    ScriptedOpenAI,
    ScriptedToolCall,
    error_reply,
    hang_reply,
    text_reply,
    tool_call_reply,
)

_MISSING = binary_missing()
RUN_WITHIN = 90.0  # seconds for a whole run (a new workspace boots an OpenCode instance)

T = TypeVar("T")


def opencode_only(test: T) -> T:
    """Mark a test as needing the pinned OpenCode binary (skipped when it is missing)."""
    skip = pytest.mark.skipif(_MISSING is not None, reason=f"OpenCode not installed: {_MISSING}")
    return pytest.mark.opencode(skip(test))  # type: ignore[return-value]


# ---- fixtures -----------------------------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_opencode(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[OpenCodeEngine]:
    """One managed OpenCode server for the module (stopped at its end)."""
    with warm_dir("api-shared", tmp_path_factory) as path:
        engine = await started_engine(path)
        try:
            assert await engine.unhealthy_reason() is None
            yield engine
        finally:
            await engine.stop()


@pytest.fixture
def opencode_mode() -> str:
    """How the app reaches OpenCode: "shared" (default), "own" or "disabled" (tests
    override it with parametrize)."""
    return "shared"


@pytest.fixture
def opencode_env() -> dict[str, str]:
    """Extra ``RUNWRIGHT_*`` environment for the app's settings (parametrize to change)."""
    return {}


@pytest.fixture
def own_server_pids() -> Iterator[list[int]]:
    """Pids of servers the app managed itself; checked gone after the app stopped (this
    fixture is set up before the app, so it is torn down after it)."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


@pytest.fixture
def settings(
    make_settings: Callable[..., Settings],
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    opencode_mode: str,
    opencode_env: dict[str, str],
    own_server_pids: list[int],
) -> Settings:
    for name, value in opencode_env.items():
        monkeypatch.setenv(name, value)
    # The environment wins over the fast defaults (keyword overrides would beat it).
    fast = {k: v for k, v in FAST_OPENCODE.items() if f"RUNWRIGHT_{k.upper()}" not in opencode_env}
    if opencode_mode == "disabled":
        return make_settings()
    if opencode_mode == "own":
        return make_settings(**fast)
    shared: OpenCodeEngine = request.getfixturevalue("shared_opencode")
    assert shared.server is not None and shared.server.base_url is not None
    return make_settings(
        **fast,
        opencode_base_url=shared.server.base_url,
        opencode_password=shared.server.password,
        opencode_config_dir=shared.config.config_dir,
    )


@pytest.fixture
async def oc_app(
    client: Any,
    owner: Any,
    make_model: Any,
    scripted_openai: ScriptedOpenAI,  # noqa: F811
) -> tuple[dict[str, Any], dict[str, Any], uuid.UUID]:
    """An app whose tenant's default model is the scripted server: (app, draft, model id)."""
    model_id = await make_model(owner.tenant_id, default=True, base_url=scripted_openai.base_url)
    app, draft = await create_app_via_api(client, owner.headers)
    return app, draft, model_id


# ---- helpers ------------------------------------------------------------------------------


def _deltas(events: list[dict[str, Any]]) -> list[str]:
    return [e["data"]["payload"]["content"] for e in events
            if e["data"]["event"] == "assistant.delta"]  # fmt: skip


async def _cancel(client: Any, app_id: str, run_id: str, headers: dict[str, str]) -> Any:
    response = await client.post(runs_url(app_id, f"/{run_id}/cancel"), headers=headers)
    assert response.status_code == 200, await response.get_data(as_text=True)
    return await response.get_json()


async def _get_json(client: Any, url: str, headers: dict[str, str]) -> Any:
    response = await client.get(url, headers=headers)
    assert response.status_code == 200, await response.get_data(as_text=True)
    return await response.get_json()


# ---- runs ----------------------------------------------------------------------------------


@opencode_only
@pytest.mark.parametrize("opencode_mode", ["own"])
async def test_text_run_streams_and_completes_on_the_apps_managed_server(
    client: Any,
    owner: Any,
    oc_app: tuple[dict[str, Any], dict[str, Any], uuid.UUID],
    scripted_openai: ScriptedOpenAI,  # noqa: F811
    services: Any,
    db: Any,
    own_server_pids: list[int],
    settings: Settings,
) -> None:
    """Scenario 7 for real: engine and pinned model persisted, the session id stored as
    ``engine_run_ref``, deltas streamed, and the app's lifespan owns the server."""
    engine = services.runs.engines["opencode"]
    assert engine.server is not None and engine.server.running
    assert engine.server.pid is not None
    own_server_pids.append(engine.server.pid)
    app, _, model_id = oc_app
    answer = "Hello from OpenCode, streamed through the API."
    scripted_openai.push(text_reply(answer, chunk_size=4, delay=0.05))

    run = await create_run(client, app["id"], owner.headers, input="say hello", engine="opencode")
    assert run["status"] == "queued" and run["execution_engine"] == "opencode"
    assert run["requested_model_id"] is None and run["resolved_model_id"] == str(model_id)
    _, events = await read_stream(client, app["id"], run["run_id"], owner.headers,
                                  within=RUN_WITHIN)  # fmt: skip

    kinds = types(events)
    assert kinds[:2] == ["run.accepted", "plan.updated"]
    assert kinds[-1] == "run.completed" and "run.failed" not in kinds
    assert "revision.created" not in kinds  # nothing changed in the workspace
    deltas = _deltas(events)
    assert "".join(deltas) == answer
    assert len(deltas) > 1, "the answer arrived in one piece: deltas were not streamed"
    final = events[-1]["data"]["payload"]
    assert final["status"] == "completed" and final["execution_engine"] == "opencode"
    assert final["resolved_model_id"] == str(model_id) and final["error"] is None

    stored = await RunStore(db).get(uuid.UUID(run["run_id"]))
    assert stored is not None
    assert stored["execution_engine"] == "opencode"
    assert stored["resolved_model_id"] == model_id
    assert str(stored["engine_run_ref"]).startswith("ses")
    # the session ran in the run's own workspace, removed once the run ended
    workspace = stored["input_params"]["context"]["opencode_workspace_path"]
    assert Path(workspace) == (settings.runs_dir / "run" / run["run_id"]).resolve()
    await wait_removed(Path(workspace))
    got = await wait_status(client, app["id"], run["run_id"], owner.headers, {"completed"})
    assert got["execution_engine"] == "opencode" and got["completed_at"] is not None
    # the model saw the run's prompt (and no title request: one request in all)
    assert len(scripted_openai.bodies) == 1
    assert scripted_openai.bodies[0]["messages"][-1]["content"] in (
        "say hello",
        [{"type": "text", "text": "say hello"}],
    )


@opencode_only
async def test_edit_tool_is_auto_applied_as_revision_and_checkpoint(
    client: Any,
    owner: Any,
    oc_app: tuple[dict[str, Any], dict[str, Any], uuid.UUID],
    scripted_openai: ScriptedOpenAI,  # noqa: F811
) -> None:
    """OpenCode's own read and edit tools change the run's workspace; auto-apply turns it
    into a new draft revision and checkpoint exactly as for native runs."""
    app, draft, _ = oc_app
    assert "<h1>Chat</h1>" in draft["files"]["src/App.tsx"]
    edit = {"filePath": "src/App.tsx", "oldString": "<h1>Chat</h1>",
            "newString": "<h1>OpenCode Chat</h1>"}  # fmt: skip
    scripted_openai.push(
        tool_call_reply(ScriptedToolCall("read", {"filePath": "src/App.tsx"})),
        tool_call_reply(ScriptedToolCall("edit", edit)),
        text_reply("I renamed the heading."),
    )

    run = await create_run(client, app["id"], owner.headers, input="Rename the heading",
                           engine="opencode")  # fmt: skip
    _, events = await read_stream(client, app["id"], run["run_id"], owner.headers,
                                  within=RUN_WITHIN)  # fmt: skip

    kinds = types(events)
    assert "tool.failed" not in kinds, events
    started = [e["data"]["payload"]["tool"] for e in events if e["data"]["event"] == "tool.started"]
    assert started == ["read", "edit"]
    assert kinds.count("tool.completed") == 2
    assert kinds[-3:] == ["revision.created", "checkpoint.created", "run.completed"]
    revision = events[-3]["data"]["payload"]
    checkpoint = events[-2]["data"]["payload"]
    assert checkpoint["revision_id"] == revision["revision_id"]
    assert checkpoint["checkpoint_id"] == revision["revision_id"]
    assert "".join(_deltas(events)) == "I renamed the heading."
    final = events[-1]["data"]["payload"]
    assert final["status"] == "completed"
    assert final["result_revision_id"] == revision["revision_id"]
    assert final["checkpoint_revision_id"] == revision["revision_id"]

    state = await _get_json(client, f"/admin/apps/{app['id']}/builder/state", owner.headers)
    new_draft = state["current_draft_revision"]
    assert new_draft["id"] == revision["revision_id"]
    assert new_draft["source_revision_id"] == draft["id"]
    expected = draft["files"]["src/App.tsx"].replace("<h1>Chat</h1>", "<h1>OpenCode Chat</h1>")
    assert new_draft["files"]["src/App.tsx"] == expected
    unchanged = {k: v for k, v in draft["files"].items() if k != "src/App.tsx"}
    assert {k: v for k, v in new_draft["files"].items() if k != "src/App.tsx"} == unchanged

    listed = await _get_json(client, f"/admin/apps/{app['id']}/coding-agent/checkpoints?limit=10",
                             owner.headers)  # fmt: skip
    assert listed[0]["checkpoint_id"] == revision["revision_id"]
    assert listed[0]["run_id"] == run["run_id"]


@opencode_only
async def test_cancel_mid_stream_is_confirmed_and_closes_the_upstream(
    client: Any,
    owner: Any,
    oc_app: tuple[dict[str, Any], dict[str, Any], uuid.UUID],
    scripted_openai: ScriptedOpenAI,  # noqa: F811
) -> None:
    app, _, _ = oc_app
    scripted_openai.push(hang_reply(after_chunks=2, text="partial answer that never ends"))
    run = await create_run(client, app["id"], owner.headers, input="talk", engine="opencode")
    url = runs_url(app["id"], f"/{run['run_id']}/stream")
    async with LiveStream(client, url, owner.headers) as stream:
        await stream.until(lambda ev: "assistant.delta" in types(ev), within=RUN_WITHIN)
        cancelled = await _cancel(client, app["id"], run["run_id"], owner.headers)
        assert cancelled["status"] == "cancelled"
        assert cancelled["error"] is None and cancelled["completed_at"] is not None
        await scripted_openai.wait_for_disconnect(1, within=10.0)
        events = await stream.until(lambda ev: types(ev)[-1] in ("run.failed", "run.completed"))
    assert types(events)[-1] == "run.failed"
    assert events[-1]["data"]["diagnostics"] == [{"message": "run cancelled"}]
    assert events[-1]["data"]["payload"]["status"] == "cancelled"
    final = await wait_status(client, app["id"], run["run_id"], owner.headers, {"cancelled"})
    assert final["error"] is None


@opencode_only
async def test_upstream_http_400_fails_closed_with_the_provider_message(
    client: Any,
    owner: Any,
    oc_app: tuple[dict[str, Any], dict[str, Any], uuid.UUID],
    scripted_openai: ScriptedOpenAI,  # noqa: F811
) -> None:
    """Scenario 15 with a real upstream failure instead of a raising fake."""
    app, _, _ = oc_app
    message = "scripted upstream rejects this request"
    scripted_openai.push(error_reply(400, message))
    run = await create_run(client, app["id"], owner.headers, input="x", engine="opencode")
    _, events = await read_stream(client, app["id"], run["run_id"], owner.headers,
                                  within=RUN_WITHIN)  # fmt: skip
    kinds = types(events)
    assert kinds[-1] == "run.failed" and "run.completed" not in kinds
    assert "revision.created" not in kinds
    diagnostic = events[-1]["data"]["diagnostics"][0]
    assert diagnostic["message"] == message
    assert diagnostic["code"] == "OPENCODE_SESSION_ERROR" and diagnostic["status_code"] == 400
    final = await wait_status(client, app["id"], run["run_id"], owner.headers, {"failed"})
    assert final["error"] == message
    assert events[-1]["data"]["payload"]["status"] == "failed"


# ---- create-time refusals ------------------------------------------------------------------


@pytest.mark.parametrize("opencode_mode", ["disabled"])
async def test_opencode_disabled_is_engine_unavailable(
    client: Any, owner: Any, make_model: Any
) -> None:
    """Scenario 5 with the default settings (no binary needed)."""
    await make_model(owner.tenant_id, default=True)
    app, _ = await create_app_via_api(client, owner.headers)
    response = await client.post(runs_url(app["id"]), json={"input": "x", "engine": "opencode"},
                                 headers=owner.headers)  # fmt: skip
    assert response.status_code == 400
    detail = (await response.get_json())["detail"]
    assert detail["code"] == "CODING_AGENT_ENGINE_UNAVAILABLE"
    assert detail["field"] == "engine"
    assert detail["message"].startswith("OpenCode engine is unavailable: ")
    assert await _get_json(client, runs_url(app["id"]), owner.headers) == []


@opencode_only
async def test_workspace_that_is_not_a_directory_is_unsupported_runtime(
    client: Any,
    owner: Any,
    oc_app: tuple[dict[str, Any], dict[str, Any], uuid.UUID],
    settings: Settings,
) -> None:
    """Scenario 6 through HTTP: the directory run workspaces are made in is a file."""
    app, _, _ = oc_app
    path = settings.runs_dir / "run"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("not a directory\n")
    response = await client.post(runs_url(app["id"]), json={"input": "x", "engine": "opencode"},
                                 headers=owner.headers)  # fmt: skip
    assert response.status_code == 400, await response.get_data(as_text=True)
    detail = (await response.get_json())["detail"]
    assert detail == {
        "code": "CODING_AGENT_ENGINE_UNSUPPORTED_RUNTIME",
        "field": "engine",
        "message": "OpenCode engine requires a locally resolvable workspace path.",
    }
    assert await _get_json(client, runs_url(app["id"]), owner.headers) == []


# ---- unconfirmed cancel ----------------------------------------------------------------------


@opencode_only
@pytest.mark.parametrize("opencode_mode", ["own"])
@pytest.mark.parametrize(
    "opencode_env",
    [{"RUNWRIGHT_OPENCODE_CANCEL_TIMEOUT_SECONDS": "1",
      "RUNWRIGHT_OPENCODE_REQUEST_TIMEOUT_SECONDS": "3"}],
    ids=["short-timeouts"],
)  # fmt: skip
async def test_cancel_against_a_frozen_server_fails_the_run_closed(
    client: Any,
    owner: Any,
    oc_app: tuple[dict[str, Any], dict[str, Any], uuid.UUID],
    scripted_openai: ScriptedOpenAI,  # noqa: F811
    services: Any,
    own_server_pids: list[int],
) -> None:
    """Scenario 17 for real: the app's OpenCode process is frozen (SIGSTOP) mid-run, so the
    abort cannot be confirmed; the run fails instead of pretending it was cancelled."""
    engine = services.runs.engines["opencode"]
    assert engine.settings.opencode_cancel_timeout_seconds == 1.0
    assert engine.server is not None and engine.server.pid is not None
    pgid = engine.server.pid
    own_server_pids.append(pgid)
    app, _, _ = oc_app
    scripted_openai.push(hang_reply(after_chunks=2, text="partial answer that never ends"))
    run = await create_run(client, app["id"], owner.headers, input="talk", engine="opencode")
    url = runs_url(app["id"], f"/{run['run_id']}/stream")
    async with LiveStream(client, url, owner.headers) as stream:
        await stream.until(lambda ev: "assistant.delta" in types(ev), within=RUN_WITHIN)
        os.killpg(pgid, signal.SIGSTOP)
        try:
            loop = asyncio.get_running_loop()
            started = loop.time()
            result = await _cancel(client, app["id"], run["run_id"], owner.headers)
            took = loop.time() - started
        finally:
            os.killpg(pgid, signal.SIGCONT)
        events = await stream.until(lambda ev: types(ev)[-1] in ("run.failed", "run.completed"))
    assert result["status"] == "failed" and result["completed_at"] is not None
    assert result["error"].startswith("OpenCode cancellation request failed: ")
    assert took < 15, f"cancel took {took:.1f} s"
    assert types(events)[-1] == "run.failed"
    diagnostic = events[-1]["data"]["diagnostics"][0]
    assert diagnostic["code"] == "OPENCODE_CANCEL_UNCONFIRMED"
    assert diagnostic["message"] == result["error"]
    assert events[-1]["data"]["payload"]["status"] == "failed"
    final = await wait_status(client, app["id"], run["run_id"], owner.headers, {"failed"})
    assert final["error"] == result["error"]


@opencode_only
async def test_a_tenant_key_reaches_the_model_through_the_relay_never_opencode(
    client: Any,
    owner: Any,
    services: Any,
    scripted_openai: ScriptedOpenAI,  # noqa: F811
) -> None:
    """docs/security.md: OpenCode gets a loopback relay URL and no key; the relay adds the
    tenant's key (opened from its sealed form) and connects under the egress policy."""
    key = "sk-opencode-tenant-key-0123456789"
    binding = {"provider": "openai", "provider_model_id": "scripted-model",
               "base_url": scripted_openai.base_url, "api_key": key}  # fmt: skip
    created = await client.post("/admin/models", headers=owner.headers,
                                json={"name": "keyed", "bindings": [binding]})  # fmt: skip
    assert created.status_code == 200, await created.get_data(as_text=True)
    model_id = (await created.get_json())["id"]
    app, _ = await create_app_via_api(client, owner.headers)
    scripted_openai.push(text_reply("keyed hello"))

    run = await create_run(client, app["id"], owner.headers, input="say hello",
                           engine="opencode", model_id=model_id)  # fmt: skip
    text, events = await read_stream(client, app["id"], run["run_id"], owner.headers,
                                     within=RUN_WITHIN)  # fmt: skip

    assert types(events)[-1] == "run.completed", text
    assert "".join(_deltas(events)) == "keyed hello"
    assert scripted_openai.requests[-1].headers["authorization"] == f"Bearer {key}"
    engine = services.runs.engines["opencode"]
    config = engine.config.path.read_text()
    assert key not in config and key not in text
    assert scripted_openai.base_url not in config and engine.relay.base_url in config


# ---- approvals (issue 12 item 2: permission requests map onto pause and resume) -------------

EDIT = {"filePath": "src/App.tsx", "oldString": "<h1>Chat</h1>",
        "newString": "<h1>Approved Chat</h1>"}  # fmt: skip


async def _paused_on_edit(
    client: Any,
    owner: Any,
    app: dict[str, Any],
    scripted_openai: ScriptedOpenAI,  # noqa: F811
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    scripted_openai.push(
        tool_call_reply(ScriptedToolCall("read", {"filePath": "src/App.tsx"})),
        tool_call_reply(ScriptedToolCall("edit", EDIT)),
    )
    run = await create_run(client, app["id"], owner.headers, input="Rename the heading",
                           engine="opencode", approval_policy="patches")  # fmt: skip
    _, events = await read_stream(client, app["id"], run["run_id"], owner.headers,
                                  within=RUN_WITHIN)  # fmt: skip
    assert types(events)[-2:] == ["approval.requested", "run.completed"], types(events)
    assert events[-1]["data"]["payload"]["status"] == "paused"
    return run, events


@opencode_only
async def test_an_edit_permission_waits_for_approval_then_continues_the_same_session(
    client: Any,
    owner: Any,
    oc_app: tuple[dict[str, Any], dict[str, Any], uuid.UUID],
    scripted_openai: ScriptedOpenAI,  # noqa: F811
) -> None:
    app, _, _ = oc_app
    run, events = await _paused_on_edit(client, owner, app, scripted_openai)
    request = events[-2]["data"]["payload"]
    assert request["tool"] == "edit" and request["editable"] is False
    assert request["arguments"]["filepath"] == "src/App.tsx"  # no server path shown
    state = await _get_json(client, f"/admin/apps/{app['id']}/builder/state", owner.headers)
    assert "Approved Chat" not in state["current_draft_revision"]["files"]["src/App.tsx"]
    url = runs_url(app["id"], f"/{run['run_id']}/resume")
    decision = {"request_id": request["request_id"], "decision": "approve"}
    edited = await client.post(url, json={"approval": {**decision, "arguments": EDIT}},
                               headers=owner.headers)  # fmt: skip
    assert edited.status_code == 422
    assert (await edited.get_json())["detail"]["code"] == "APPROVAL_ARGUMENTS_NOT_EDITABLE"

    scripted_openai.push(text_reply("Renamed after approval."))
    after = await decide(client, app["id"], run["run_id"], owner.headers, events[-1]["id"],
                         within=RUN_WITHIN, **decision)  # fmt: skip
    kinds = types(after)
    assert kinds[-3:] == ["revision.created", "checkpoint.created", "run.completed"], kinds
    assert after[-1]["data"]["payload"]["status"] == "completed"
    state = await _get_json(client, f"/admin/apps/{app['id']}/builder/state", owner.headers)
    assert "<h1>Approved Chat</h1>" in state["current_draft_revision"]["files"]["src/App.tsx"]
    assert len(scripted_openai.bodies) == 3  # read, edit, the answer: nothing asked twice


@opencode_only
async def test_a_rejected_edit_permission_tells_the_model_why(
    client: Any,
    owner: Any,
    oc_app: tuple[dict[str, Any], dict[str, Any], uuid.UUID],
    scripted_openai: ScriptedOpenAI,  # noqa: F811
) -> None:
    app, _, _ = oc_app
    run, events = await _paused_on_edit(client, owner, app, scripted_openai)
    request = events[-2]["data"]["payload"]
    scripted_openai.push(text_reply("Left it alone."))
    reason = "The heading is a trademark, keep it"
    after = await decide(client, app["id"], run["run_id"], owner.headers, events[-1]["id"],
                         within=RUN_WITHIN, request_id=request["request_id"],
                         decision="reject", message=reason)  # fmt: skip
    assert after[-1]["data"]["payload"]["status"] == "completed"
    assert "revision.created" not in types(after)
    assert reason in str(scripted_openai.bodies[-1]["messages"])


@opencode_only
async def test_a_pause_whose_opencode_request_is_gone_fails_the_resume_closed(
    client: Any,
    owner: Any,
    oc_app: tuple[dict[str, Any], dict[str, Any], uuid.UUID],
    scripted_openai: ScriptedOpenAI,  # noqa: F811
    services: Any,
    db: Any,
) -> None:
    """The OpenCode session stopped waiting while the run was paused (here: aborted, as a
    restarted OpenCode server would have forgotten the request): the resume fails the run
    with OPENCODE_PAUSE_LOST instead of finishing it from a half-done session."""
    app, _, _ = oc_app
    run, events = await _paused_on_edit(client, owner, app, scripted_openai)
    stored = await RunStore(db).get(uuid.UUID(run["run_id"]))
    assert stored is not None
    directory = stored["input_params"]["context"]["opencode_workspace_path"]
    engine = services.runs.engines["opencode"]
    assert await engine.client.abort(directory, stored["engine_run_ref"])
    after = await decide(client, app["id"], run["run_id"], owner.headers, events[-1]["id"],
                         within=RUN_WITHIN, decision="approve",
                         request_id=events[-2]["data"]["payload"]["request_id"])  # fmt: skip
    assert after[-1]["data"]["event"] == "run.failed"
    assert after[-1]["data"]["diagnostics"][0]["code"] == "OPENCODE_PAUSE_LOST"
    assert "revision.created" not in types(after)
