"""An approver's edited arguments get the checks a model's call gets, at the decision
(422 naming the field; the run keeps waiting, nothing is lost), through the HTTP API with
the native engine on the scripted OpenAI server: a switched-off tool, apply_patch's
``expected_hashes`` against the paused workspace, restore_checkpoint's id (its form and
its app)."""

from __future__ import annotations

import hashlib

import pytest

from tests.support.api import create_app_via_api
from tests.support.approvals import draft_file, paused, resume
from tests.support.openai_script import call
from tests.support.patches import heading_patch
from tests.support.runs import decide, types, wait_status
from tests.support.scripted_openai import text_reply

OTHER_PATCH = heading_patch("Reviewed Chat")


@pytest.fixture
def settings(make_settings, request):
    """The scripted engine on; ``request.param``: more settings (indirect parametrize)."""
    return make_settings(scripted_engine_enabled=True, **getattr(request, "param", {}))


async def _refused_and_still_waiting(client, app, run, owner, request_id, arguments):
    """Approve with ``arguments``; returns the 422's detail after checking that the run
    still waits on the same request."""
    refused = await resume(
        client, app, run, owner,
        approval={"request_id": request_id, "decision": "approve", "arguments": arguments},
    )  # fmt: skip
    assert refused.status_code == 422, await refused.get_data(as_text=True)
    waiting = await wait_status(client, app["id"], run["run_id"], owner.headers, {"paused"})
    assert waiting["pending_approval"]["request_id"] == request_id
    return (await refused.get_json())["detail"]


async def test_stale_expected_hashes_are_refused_at_the_decision(
    client, owner, paused_on_patch, scripted_openai
):
    app, run, events, request_id = paused_on_patch
    digest = hashlib.sha256((await draft_file(client, app, owner)).encode()).hexdigest()

    for hashes, named in (({"src/App.tsx": "0" * 64}, "src/App.tsx"),
                          ({"src/Missing.tsx": digest}, "src/Missing.tsx")):  # fmt: skip
        detail = await _refused_and_still_waiting(
            client, app, run, owner, request_id, {"patch": OTHER_PATCH, "expected_hashes": hashes}
        )
        assert detail == {
            "code": "PATCH_PRECONDITION_FAILED",
            "field": "approval.arguments.expected_hashes",
            "message": f"expected_hashes do not match the workspace for: {named}",
        }
    escaping = await _refused_and_still_waiting(
        client, app, run, owner, request_id,
        {"patch": OTHER_PATCH, "expected_hashes": {"../outside.tsx": digest}},
    )  # fmt: skip
    assert escaping["code"] == "BUILDER_PATCH_POLICY_VIOLATION"
    assert len(scripted_openai.bodies) == 1  # the model was not asked again

    # The hash of the file as the run paused on it is taken, and the edit runs.
    after = await decide(
        client, app["id"], run["run_id"], owner.headers, events[-1]["id"],
        request_id=request_id, decision="approve",
        arguments={"patch": OTHER_PATCH, "expected_hashes": {"src/App.tsx": f"sha256:{digest}"}},
    )  # fmt: skip
    assert after[-1]["data"]["payload"]["status"] == "completed"
    assert types(after).count("tool.started") == 1
    assert "<h1>Reviewed Chat</h1>" in await draft_file(client, app, owner)


async def test_an_edited_checkpoint_id_must_be_a_revision_of_the_app(
    client, owner, native_app, scripted_openai
):
    app, draft = native_app
    other_app, other_draft = await create_app_via_api(client, owner.headers)
    scripted_openai.push(
        call("coding_agent_restore_checkpoint", checkpoint_revision_id=draft["id"]),
        text_reply("Restored."),
    )
    run, events = await paused(client, app, owner, input="Undo", approval_policy="patches")
    request = events[-2]["data"]["payload"]
    assert request["tool"] == "coding_agent_restore_checkpoint"

    malformed = await _refused_and_still_waiting(
        client, app, run, owner, request["request_id"], {"checkpoint_id": "yesterday"}
    )
    assert malformed == {
        "code": "TOOL_INPUT_VALIDATION_FAILED",
        "field": "approval.arguments.checkpoint_revision_id",
        "message": "Invalid checkpoint id: yesterday",
    }
    for foreign in (other_draft["id"], "00000000-0000-4000-8000-000000000000"):
        detail = await _refused_and_still_waiting(
            client, app, run, owner, request["request_id"], {"checkpoint_revision_id": foreign}
        )
        assert detail == {
            "code": "BUILDER_PATCH_POLICY_VIOLATION",
            "field": "approval.arguments.checkpoint_revision_id",
            "message": "Checkpoint does not belong to this app",
        }
    assert len(scripted_openai.bodies) == 1

    after = await decide(
        client, app["id"], run["run_id"], owner.headers, events[-1]["id"],
        request_id=request["request_id"], decision="approve",
        arguments={"checkpoint_revision_id": draft["id"]},
    )  # fmt: skip
    assert after[-1]["data"]["payload"]["status"] == "completed"
    finished = next(e["data"] for e in after if e["data"]["event"] == "tool.completed")
    assert finished["payload"]["output"]["from_checkpoint_revision_id"] == draft["id"]
    assert other_app["id"] != app["id"]


@pytest.mark.parametrize("settings", [{"enable_legacy_write_file": True}], indirect=True)
async def test_a_switched_on_write_is_held_to_the_size_limit_and_then_runs(
    client, owner, native_app, scripted_openai, settings
):
    """With the legacy write switched on, its edit is checked like a model's (size limit)
    and a fitting one runs; switched off (the default), any edit of it is refused
    (tests/api/test_approvals.py, ``write-disabled``)."""
    app, _ = native_app
    scripted_openai.push(call("coding_agent_write_file", path="src/New.tsx", content="x"),
                         text_reply("Written."))  # fmt: skip
    run, events = await paused(client, app, owner, input="Write", approval_policy="patches")
    request_id = events[-2]["data"]["payload"]["request_id"]
    big = "x" * (settings.max_patch_bytes + 1)
    detail = await _refused_and_still_waiting(
        client, app, run, owner, request_id, {"path": "src/New.tsx", "content": big}
    )
    assert detail["code"] == "PATCH_TOO_LARGE"
    assert detail["field"] == "approval.arguments.content"

    after = await decide(
        client, app["id"], run["run_id"], owner.headers, events[-1]["id"],
        request_id=request_id, decision="approve",
        arguments={"path": "src/New.tsx", "content": "export const edited = 1;\n"},
    )  # fmt: skip
    assert after[-1]["data"]["payload"]["status"] == "completed"
    assert "edited = 1" in await draft_file(client, app, owner, "src/New.tsx")
