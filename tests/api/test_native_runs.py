"""Native runs through the HTTP API against a scripted OpenAI-compatible server on loopback:
tools on the run's workspace, auto-apply into a revision and checkpoint, restore, cancel,
and a model endpoint that is down (contract 1.8-1.9, 3.3-3.4, 7, 8; docs/design.md 8.7, 8.11)."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

import pytest

from tests.support.api import create_app_via_api
from tests.support.fixtures_openai import dead_openai_url  # noqa: F401
from tests.support.openai_script import call
from tests.support.patches import heading_patch
from tests.support.runs import LiveStream, create_run, read_stream, runs_url, types, wait_status
from tests.support.scripted_openai import (
    Reply,
    hang_reply,
    text_reply,
)

SLEEP_COMMAND = "sleep 31.5"  # unique, so the test can find (or not find) the process

GOOD_PATCH = heading_patch("Runwright Chat")
STALE_PATCH = GOOD_PATCH.replace("<h1>Chat</h1>", "<h1>Gossip</h1>")


@pytest.fixture
def overrides() -> dict:
    """Extra settings for one test (``@pytest.mark.parametrize("overrides", [...])``)."""
    return {}


@pytest.fixture
def settings(make_settings, overrides):
    return make_settings(
        scripted_engine_enabled=True, command_allowlist=(SLEEP_COMMAND,), **overrides
    )


async def test_read_patch_complete_creates_revision_and_checkpoint(
    client,
    owner,
    native_app,
    scripted_openai,
):
    app, draft = native_app
    scripted_openai.push(
        call("coding_agent_read_file_range", path="src/App.tsx", start_line=30, end_line=40),
        call("coding_agent_apply_patch", patch=GOOD_PATCH),
        text_reply("I renamed the heading to Runwright Chat.", delay=0.002),
    )
    run = await create_run(client, app["id"], owner.headers, input="Rename the heading")
    _, events = await read_stream(client, app["id"], run["run_id"], owner.headers)
    kinds = types(events)
    assert kinds[:2] == ["run.accepted", "plan.updated"]
    assert kinds.count("tool.completed") == 2 and "tool.failed" not in kinds
    assert kinds[-3:] == ["revision.created", "checkpoint.created", "run.completed"]
    revision_event = events[-3]["data"]["payload"]
    checkpoint_event = events[-2]["data"]["payload"]
    assert checkpoint_event["revision_id"] == revision_event["revision_id"]
    text = "".join(e["data"]["payload"]["content"] for e in events
                   if e["data"]["event"] == "assistant.delta")  # fmt: skip
    assert text == "I renamed the heading to Runwright Chat."

    final = events[-1]["data"]["payload"]
    assert final["result_revision_id"] == revision_event["revision_id"]
    assert final["checkpoint_revision_id"] == revision_event["revision_id"]
    state = await (await client.get(f"/admin/apps/{app['id']}/builder/state",
                                    headers=owner.headers)).get_json()  # fmt: skip
    new_draft = state["current_draft_revision"]
    assert new_draft["id"] == revision_event["revision_id"]
    assert new_draft["source_revision_id"] == draft["id"]
    assert "<h1>Runwright Chat</h1>" in new_draft["files"]["src/App.tsx"]
    assert new_draft["files"]["src/App.tsx"].endswith("\n")

    listed = await client.get(f"/admin/apps/{app['id']}/coding-agent/checkpoints?limit=10",
                              headers=owner.headers)  # fmt: skip
    checkpoints = await listed.get_json()
    assert checkpoints[0]["checkpoint_id"] == revision_event["revision_id"]
    assert checkpoints[0]["run_id"] == run["run_id"]

    # the model saw the system prompt, the history and the tool results
    first = scripted_openai.bodies[0]
    assert first["messages"][0]["role"] == "system"
    assert first["messages"][-1] == {"role": "user", "content": "Rename the heading"}
    assert {t["function"]["name"] for t in first["tools"]} >= {"coding_agent_apply_patch"}


async def test_hunk_mismatch_is_a_tool_failure_and_the_agent_recovers(
    client,
    owner,
    native_app,
    scripted_openai,
):
    app, _ = native_app
    scripted_openai.push(
        call("coding_agent_apply_patch", patch=STALE_PATCH),
        call("coding_agent_apply_patch", patch=GOOD_PATCH),
        text_reply("Fixed after refreshing."),
    )
    run = await create_run(client, app["id"], owner.headers, input="Rename the heading")
    _, events = await read_stream(client, app["id"], run["run_id"], owner.headers)
    failed = next(e["data"] for e in events if e["data"]["event"] == "tool.failed")
    diag = failed["diagnostics"][0]
    assert diag["code"] == "PATCH_HUNK_MISMATCH"
    assert diag["patch_failure_count"] == 1
    assert diag["recommended_refresh"]["path"] == "src/App.tsx"
    assert failed["payload"]["output"]["refresh_windows"]
    assert types(events)[-1] == "run.completed"
    assert "revision.created" in types(events)


async def test_a_run_that_changes_nothing_creates_no_revision(
    client,
    owner,
    native_app,
    scripted_openai,
    settings,
):
    app, draft = native_app
    scripted_openai.push(text_reply("Nothing to change."))
    run = await create_run(client, app["id"], owner.headers, input="Just look")
    _, events = await read_stream(client, app["id"], run["run_id"], owner.headers)
    assert "revision.created" not in types(events)
    assert events[-1]["data"]["payload"]["result_revision_id"] is None
    state = await (await client.get(f"/admin/apps/{app['id']}/builder/state",
                                    headers=owner.headers)).get_json()  # fmt: skip
    assert state["current_draft_revision"]["id"] == draft["id"]
    # No tool ran, so the run never made its workspace: its base revision was never even
    # copied into the revision cache (runtime.engine.PendingWorkspace).
    assert not (settings.runs_dir / "revisions" / draft["id"]).exists()
    # nor was any workspace directory made for it, at creation (the native preflight reads
    # no workspace path) or since
    assert not (settings.runs_dir / "run").exists()

    # The first tool call makes it: the same app's next run reads its files.
    scripted_openai.push(call("coding_agent_read_file", path="src/App.tsx"), text_reply("Read it."))
    run = await create_run(client, app["id"], owner.headers, input="Read the app")
    _, events = await read_stream(client, app["id"], run["run_id"], owner.headers)
    read = next(e["data"]["payload"] for e in events if e["data"]["event"] == "tool.completed")
    assert "<h1>Chat</h1>" in read["output"]["content"]
    assert (settings.runs_dir / "revisions" / draft["id"]).is_dir()
    assert types(events)[-1] == "run.completed" and "revision.created" not in types(events)


async def test_tool_arguments_cannot_redirect_to_another_run(
    client,
    owner,
    native_app,
    scripted_openai,
):
    app, draft = native_app
    other_app, other_draft = await create_app_via_api(client, owner.headers)
    files = dict(other_draft["files"], **{"src/secret.md": "other app secret"})
    response = await client.post(
        f"/admin/apps/{other_app['id']}/builder/revisions",
        json={"files": files, "base_revision_id": other_draft["id"]}, headers=owner.headers,
    )  # fmt: skip
    assert response.status_code == 200, await response.get_data(as_text=True)
    scripted_openai.push(text_reply("done"))
    other_run = await create_run(client, other_app["id"], owner.headers, input="noop")
    await wait_status(client, other_app["id"], other_run["run_id"], owner.headers, {"completed"})

    hijack = {"run_id": other_run["run_id"], "app_id": other_app["id"],
              "tenant_id": str(owner.tenant_id), "path": "src/secret.md"}  # fmt: skip
    delete = {"run_id": other_run["run_id"], "path": "src/App.tsx",
              "context": {"run_id": other_run["run_id"]}}  # fmt: skip
    scripted_openai.push(
        call("coding_agent_read_file", **hijack),
        call("coding_agent_delete_file", **delete),
        text_reply("ok"),
    )
    run = await create_run(client, app["id"], owner.headers, input="try")
    _, events = await read_stream(client, app["id"], run["run_id"], owner.headers)
    outputs = [e["data"]["payload"]["output"] for e in events
               if e["data"]["event"] in ("tool.completed", "tool.failed")]  # fmt: skip
    assert "File not found" in outputs[0]["error"]  # read in this run's own workspace
    # the delete hit this run's workspace: the other app's files are untouched
    other_state = await (await client.get(f"/admin/apps/{other_app['id']}/builder/state",
                                          headers=owner.headers)).get_json()  # fmt: skip
    assert "src/App.tsx" in other_state["current_draft_revision"]["files"]
    assert types(events)[-1] in ("run.completed", "run.failed")


def _sleepers() -> list[int]:
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if cmdline == b"sleep\x0031.5\x00":
            found.append(int(pid))
    return found


async def test_cancel_kills_a_running_test_command(
    client,
    owner,
    native_app,
    scripted_openai,
):
    app, _ = native_app
    scripted_openai.push(call("coding_agent_run_targeted_tests", command=SLEEP_COMMAND))
    run = await create_run(client, app["id"], owner.headers, input="run the tests")
    url = runs_url(app["id"], f"/{run['run_id']}/stream")
    async with LiveStream(client, url, owner.headers) as stream:
        await stream.until(lambda ev: "tool.started" in types(ev))
        for _ in range(100):
            if _sleepers():
                break
            await asyncio.sleep(0.05)
        assert _sleepers(), "the test command did not start"
        response = await client.post(runs_url(app["id"], f"/{run['run_id']}/cancel"),
                                     headers=owner.headers)  # fmt: skip
        assert (await response.get_json())["status"] == "cancelled"
        assert _sleepers() == []  # killed before the cancel was answered


async def test_cancel_mid_stream_closes_the_upstream_connection(
    client,
    owner,
    native_app,
    scripted_openai,
):
    app, _ = native_app
    scripted_openai.push(hang_reply(after_chunks=2, text="partial answer that never ends"))
    run = await create_run(client, app["id"], owner.headers, input="talk")
    url = runs_url(app["id"], f"/{run['run_id']}/stream")
    async with LiveStream(client, url, owner.headers) as stream:
        await stream.until(lambda ev: "assistant.delta" in types(ev))
        response = await client.post(runs_url(app["id"], f"/{run['run_id']}/cancel"),
                                     headers=owner.headers)  # fmt: skip
        assert (await response.get_json())["status"] == "cancelled"
        await scripted_openai.wait_for_disconnect(1, within=5.0)
        events = await stream.until(lambda ev: types(ev)[-1] == "run.failed")
    assert events[-1]["data"]["diagnostics"] == [{"message": "run cancelled"}]


async def test_model_endpoint_down_fails_the_run_clearly(
    client,
    owner,
    make_model,
    dead_openai_url,  # noqa: F811
):
    model_id = await make_model(owner.tenant_id, base_url=dead_openai_url)
    app, _ = await create_app_via_api(client, owner.headers)
    run = await create_run(client, app["id"], owner.headers, input="x", model_id=str(model_id))
    _, events = await read_stream(client, app["id"], run["run_id"], owner.headers)
    assert types(events)[-1] == "run.failed"
    message = events[-1]["data"]["diagnostics"][0]["message"]
    assert dead_openai_url.split("/v1")[0] in message
    final = await wait_status(client, app["id"], run["run_id"], owner.headers, {"failed"})
    assert final["error"] == message


async def test_restore_a_checkpoint_creates_a_new_draft(
    client,
    owner,
    native_app,
    scripted_openai,
):
    app, draft = native_app
    scripted_openai.push(call("coding_agent_apply_patch", patch=GOOD_PATCH), text_reply("done"))
    run = await create_run(client, app["id"], owner.headers, input="Rename")
    done = await wait_status(client, app["id"], run["run_id"], owner.headers, {"completed"})
    changed = done["checkpoint_revision_id"]

    url = f"/admin/apps/{app['id']}/coding-agent/checkpoints/{draft['id']}/restore"
    response = await client.post(url, json={"run_id": run["run_id"]}, headers=owner.headers)
    assert response.status_code == 200
    restored = await response.get_json()
    assert restored["checkpoint_id"] == draft["id"] and restored["run_id"] == run["run_id"]
    new = restored["revision"]
    assert new["id"] not in (draft["id"], changed)
    assert new["files"] == draft["files"] and new["source_revision_id"] == changed
    state = await (await client.get(f"/admin/apps/{app['id']}/builder/state",
                                    headers=owner.headers)).get_json()  # fmt: skip
    assert state["current_draft_revision"]["id"] == new["id"]
    relinked = await (await client.get(runs_url(app["id"], f"/{run['run_id']}"),
                                       headers=owner.headers)).get_json()  # fmt: skip
    assert relinked["result_revision_id"] == new["id"]
    assert relinked["checkpoint_revision_id"] == draft["id"]

    missing = await client.post(
        f"/admin/apps/{app['id']}/coding-agent/checkpoints/{run['run_id']}/restore",
        json={}, headers=owner.headers,
    )  # fmt: skip
    assert missing.status_code == 404
    assert await missing.get_json() == {"detail": "Revision not found"}
    bad_run = await client.post(url, json={"run_id": draft["id"]}, headers=owner.headers)
    assert await bad_run.get_json() == {"detail": "Coding-agent run not found"}


async def test_restoring_onto_a_run_that_has_not_ended_is_refused(
    client,
    owner,
    native_app,
    scripted_openai,
):
    """A person's restore naming a running run answers 409 RUN_NOT_ENDED and writes
    nothing: no revision, the draft and the run's links unchanged. The run then applies
    its own change (before, the restore relinked it and its auto-apply reported the
    restored revision instead, dropping the change). Once it has ended, the same restore
    relinks it."""
    app, draft = native_app
    gate = threading.Event()
    scripted_openai.push(
        call("coding_agent_apply_patch", patch=GOOD_PATCH),
        Reply(text_chunks=("done",), gate=gate),
    )
    run = await create_run(client, app["id"], owner.headers, input="Rename")
    run_url = runs_url(app["id"], f"/{run['run_id']}")
    restore = f"/admin/apps/{app['id']}/coding-agent/checkpoints/{draft['id']}/restore"
    state_url = f"/admin/apps/{app['id']}/builder/state"
    async with LiveStream(client, f"{run_url}/stream", owner.headers) as stream:
        await stream.until(lambda ev: "tool.completed" in types(ev), within=60)
        before = await (await client.get(state_url, headers=owner.headers)).get_json()
        refused = await client.post(restore, json={"run_id": run["run_id"]},
                                    headers=owner.headers)  # fmt: skip
        assert refused.status_code == 409, (await refused.get_data(as_text=True))[:300]
        detail = (await refused.get_json())["detail"]
        assert detail["code"] == "RUN_NOT_ENDED"
        assert detail["run_id"] == run["run_id"] and detail["status"] == "running"
        assert "running" in detail["message"] and "run_id" in detail["message"]
        after = await (await client.get(state_url, headers=owner.headers)).get_json()
        assert after == before  # nothing written: the draft did not move
        live = await (await client.get(run_url, headers=owner.headers)).get_json()
        assert live["result_revision_id"] is None and live["checkpoint_revision_id"] is None
        gate.set()
        events = await stream.until(
            lambda ev: types(ev)[-1] in ("run.failed", "run.completed"), within=60
        )
    assert types(events)[-3:] == ["revision.created", "checkpoint.created", "run.completed"]
    applied = events[-1]["data"]["payload"]["result_revision_id"]
    state = await (await client.get(state_url, headers=owner.headers)).get_json()
    assert state["current_draft_revision"]["id"] == applied
    assert "<h1>Runwright Chat</h1>" in state["current_draft_revision"]["files"]["src/App.tsx"]

    relinked = await client.post(restore, json={"run_id": run["run_id"]}, headers=owner.headers)
    assert relinked.status_code == 200, await relinked.get_data(as_text=True)
    ended = await (await client.get(run_url, headers=owner.headers)).get_json()
    assert ended["result_revision_id"] == (await relinked.get_json())["revision"]["id"]
    assert ended["checkpoint_revision_id"] == draft["id"]


@pytest.mark.parametrize("edit", ["elsewhere", "same line"])
async def test_a_draft_saved_during_the_run_is_merged_never_overwritten(
    client,
    owner,
    native_app,
    scripted_openai,
    edit,
):
    """A person saves the draft while the run works: the run's change is merged onto the
    saved draft (both edits kept) unless both changed the same line, which fails the run
    with REVISION_CONFLICT naming the file (docs/architecture.md, merge rules)."""
    app, draft = native_app
    gate = threading.Event()
    scripted_openai.push(
        call("coding_agent_apply_patch", patch=GOOD_PATCH),
        Reply(text_chunks=("done",), gate=gate),
    )
    run = await create_run(client, app["id"], owner.headers, input="Rename")
    url = runs_url(app["id"], f"/{run['run_id']}/stream")
    async with LiveStream(client, url, owner.headers) as stream:
        await stream.until(lambda ev: "tool.completed" in types(ev), within=60)
        if edit == "elsewhere":
            files = dict(draft["files"], **{"README.md": "edited by a person\n"})
        else:
            app_tsx = draft["files"]["src/App.tsx"].replace("<h1>Chat</h1>", "<h1>Talk</h1>")
            files = dict(draft["files"], **{"src/App.tsx": app_tsx})
        moved = await client.post(
            f"/admin/apps/{app['id']}/builder/revisions",
            json={"files": files, "base_revision_id": draft["id"]}, headers=owner.headers,
        )  # fmt: skip
        assert moved.status_code == 200
        saved = await moved.get_json()
        gate.set()
        events = await stream.until(
            lambda ev: types(ev)[-1] in ("run.failed", "run.completed"), within=60
        )
    state = await (await client.get(f"/admin/apps/{app['id']}/builder/state",
                                    headers=owner.headers)).get_json()  # fmt: skip
    current = state["current_draft_revision"]
    if edit == "same line":
        assert types(events)[-1] == "run.failed"
        diagnostic = events[-1]["data"]["diagnostics"][0]
        assert diagnostic["code"] == "REVISION_CONFLICT"
        assert diagnostic["paths"] == ["src/App.tsx"]
        assert current["files"] == files  # the person's save stands
        return
    assert types(events)[-1] == "run.completed"
    assert current["source_revision_id"] == saved["id"]
    assert current["files"]["README.md"] == "edited by a person\n"
    assert "<h1>Runwright Chat</h1>" in current["files"]["src/App.tsx"]


async def test_token_deltas_are_coalesced_before_the_actor(
    client,
    owner,
    native_app,
    scripted_openai,
):
    app, _ = native_app
    scripted_openai.push(text_reply("x" * 200, chunk_size=1, delay=0.002))
    run = await create_run(client, app["id"], owner.headers, input="type a lot")
    _, events = await read_stream(client, app["id"], run["run_id"], owner.headers)
    deltas = [e["data"]["payload"]["content"] for e in events
              if e["data"]["event"] == "assistant.delta"]  # fmt: skip
    assert "".join(deltas) == "x" * 200
    assert deltas[0] == "x"  # the first token is not held back
    assert len(deltas) < 60  # ~200 tokens over >= 0.4 s in 30 ms windows


@pytest.mark.parametrize("overrides", [{"max_live_runs": 1}])  # the pinned run waits
async def test_a_run_executes_with_its_pinned_model_after_the_default_changes(
    client,
    owner,
    native_app,
    scripted_openai,
    make_model,
    dead_openai_url,  # noqa: F811
):
    """Contract 4 / section 10 scenario 1: the model resolved at creation is the one that
    executes, even when the tenant's default changes before the run starts (one execution
    slot: the pinned run waits queued behind the blocker)."""
    app, _ = native_app
    scripted_openai.push(hang_reply(after_chunks=1, text="blocking"), text_reply("pinned"))
    blocker = await create_run(client, app["id"], owner.headers, input="hold the only slot")
    await wait_status(client, app["id"], blocker["run_id"], owner.headers, {"running"})
    # `running` comes before the model request: the blocker must have taken the hanging
    # reply, or the pinned run would get it after the cancel
    await scripted_openai.wait_for_requests(1, within=60)
    pinned = await create_run(client, app["id"], owner.headers, input="use my model")
    waiting = await client.get(runs_url(app["id"], f"/{pinned['run_id']}"), headers=owner.headers)
    assert (await waiting.get_json())["status"] == "queued"  # behind the blocker
    # a new tenant default that cannot answer: a run using it would fail
    await make_model(owner.tenant_id, default=True, base_url=dead_openai_url)
    await client.post(runs_url(app["id"], f"/{blocker['run_id']}/cancel"), headers=owner.headers)
    done = await wait_status(client, app["id"], pinned["run_id"], owner.headers,
                             {"completed", "failed"}, within=60)  # fmt: skip
    assert done["status"] == "completed", done["error"]
    assert done["resolved_model_id"] == pinned["resolved_model_id"]


async def test_checkpoint_tools_create_and_restore_inside_a_run(
    client,
    owner,
    native_app,
    scripted_openai,
):
    """The agent's create_checkpoint records a revision on the run; restore_checkpoint
    brings the workspace back to a revision's files (contract 7.3)."""
    app, draft = native_app
    scripted_openai.push(
        call("coding_agent_apply_patch", patch=GOOD_PATCH),
        call("coding_agent_create_checkpoint"),
        call("coding_agent_restore_checkpoint", checkpoint_revision_id=draft["id"]),
        call("coding_agent_read_file", path="src/App.tsx"),
        text_reply("restored"),
    )
    run = await create_run(client, app["id"], owner.headers, input="checkpoint and undo")
    _, events = await read_stream(client, app["id"], run["run_id"], owner.headers)
    outputs = {
        e["data"]["payload"]["tool"]: e["data"]["payload"]["output"]
        for e in events
        if e["data"]["event"] == "tool.completed"
    }
    created = outputs["coding_agent_create_checkpoint"]["checkpoint_revision_id"]
    restored = outputs["coding_agent_restore_checkpoint"]
    assert restored["from_checkpoint_revision_id"] == draft["id"]
    assert "<h1>Chat</h1>" in outputs["coding_agent_read_file"]["content"]  # workspace re-synced
    url = f"/admin/apps/{app['id']}/revisions/{created}"
    checkpoint = await (await client.get(url, headers=owner.headers)).get_json()
    assert "<h1>Runwright Chat</h1>" in checkpoint["files"]["src/App.tsx"]
    final = events[-1]["data"]["payload"]
    assert final["status"] == "completed"
    assert final["result_revision_id"] == restored["restored_revision_id"]
