"""Human approval of tool calls through the HTTP API, native engine against the scripted
OpenAI server on loopback (issue 12 items 2 and 6): a marked call pauses the run with
``approval.requested``; resume approves (maybe with edited arguments) or rejects; the model
is never asked again for work already done; a pause without a decision fails closed."""

from __future__ import annotations

import json

import pytest

from tests.support.approvals import draft_file, paused, resume
from tests.support.openai_script import call
from tests.support.patches import heading_patch
from tests.support.runs import create_run, decide, read_stream, runs_url, types, wait_status
from tests.support.scripted_openai import text_reply

GOOD_PATCH = heading_patch("Runwright Chat")
OTHER_PATCH = heading_patch("Reviewed Chat")
ESCAPING_PATCH = GOOD_PATCH.replace("a/src/App.tsx", "a/../outside.tsx").replace(
    "b/src/App.tsx", "b/../outside.tsx"
)


@pytest.fixture
def settings(make_settings):
    return make_settings(scripted_engine_enabled=True, approval_sweep_seconds=0.1)


async def test_approve_runs_the_call_and_the_model_is_not_asked_again(
    client,
    owner,
    native_app,
    scripted_openai,
):
    app, _ = native_app
    scripted_openai.push(
        call("coding_agent_read_file_range", path="src/App.tsx", start_line=30, end_line=40),
        call("coding_agent_apply_patch", patch=GOOD_PATCH),
        text_reply("Renamed the heading."),
    )
    run, events = await paused(
        client, app, owner, input="Rename the heading", approval_policy="patches"
    )
    # The read ran without asking; the patch waits.
    assert types(events).count("tool.completed") == 1
    request = events[-2]["data"]
    assert request["stage"] == "tool"
    assert request["payload"]["tool"] == "coding_agent_apply_patch"
    assert request["payload"]["arguments"] == {"patch": GOOD_PATCH}
    assert "revision.created" not in types(events)
    assert len(scripted_openai.bodies) == 2
    assert "Runwright Chat" not in await draft_file(client, app, owner)
    # The run object says what it waits on (a client that polls needs no stream).
    waiting = await wait_status(client, app["id"], run["run_id"], owner.headers, {"paused"})
    assert waiting["approval_policy"] == "patches"
    pending = waiting["pending_approval"]
    assert pending["request_id"] == request["payload"]["request_id"]
    assert pending["tool"] == "coding_agent_apply_patch" and pending["expires_at"]
    assert events[-1]["data"]["payload"]["pending_approval"] == pending

    response = await resume(
        client, app, run, owner,
        approval={"request_id": request["payload"]["request_id"], "decision": "approve"},
    )  # fmt: skip
    assert response.status_code == 200, await response.get_data(as_text=True)
    assert (await response.get_json())["status"] in ("queued", "running", "completed")

    _, after = await read_stream(
        client, app["id"], run["run_id"], owner.headers, after=events[-1]["id"]
    )
    kinds = types(after)
    assert kinds[-3:] == ["revision.created", "checkpoint.created", "run.completed"]
    assert after[-1]["data"]["payload"]["status"] == "completed"
    assert after[-1]["data"]["payload"]["pending_approval"] is None
    done = next(e["data"] for e in after if e["data"]["event"] == "tool.completed")
    assert done["payload"]["tool"] == "coding_agent_apply_patch"
    # Three model calls in all: the resume continued from the stored state.
    assert len(scripted_openai.bodies) == 3
    last = scripted_openai.bodies[2]["messages"]
    assert last[-1]["role"] == "tool" and '"error"' not in last[-1]["content"]
    assert any(m.get("tool_calls") for m in last if m["role"] == "assistant")
    assert "<h1>Runwright Chat</h1>" in await draft_file(client, app, owner)


async def test_reject_tells_the_model_why(
    client,
    owner,
    native_app,
    scripted_openai,
):
    app, _ = native_app
    scripted_openai.push(
        call("coding_agent_apply_patch", patch=GOOD_PATCH),
        text_reply("Understood, I left the heading alone."),
    )
    run, events = await paused(client, app, owner, input="Rename it", approval_policy="all")
    request_id = events[-2]["data"]["payload"]["request_id"]
    after = await decide(
        client, app["id"], run["run_id"], owner.headers, events[-1]["id"],
        request_id=request_id, decision="reject",
        message="Keep the old heading, marketing likes it",
    )  # fmt: skip
    failed = next(e["data"] for e in after if e["data"]["event"] == "tool.failed")
    assert failed["diagnostics"][0]["code"] == "APPROVAL_REJECTED"
    assert after[-1]["data"]["payload"]["status"] == "completed"
    told = scripted_openai.bodies[1]["messages"][-1]
    assert told["role"] == "tool"
    assert "Keep the old heading, marketing likes it" in told["content"]
    assert "Runwright Chat" not in await draft_file(client, app, owner)


async def test_edited_arguments_run_instead_and_escaping_ones_are_refused(
    client,
    owner,
    paused_on_patch,
    scripted_openai,
):
    app, run, events, request_id = paused_on_patch

    # Edited arguments that leave the workspace: 422, and the run still waits.
    for bad, code in (
        ({"patch": ESCAPING_PATCH}, "BUILDER_PATCH_POLICY_VIOLATION"),
        ({"diff": "   "}, "TOOL_INPUT_VALIDATION_FAILED"),
    ):
        refused = await resume(
            client, app, run, owner,
            approval={"request_id": request_id, "decision": "approve", "arguments": bad},
        )  # fmt: skip
        assert refused.status_code == 422, await refused.get_data(as_text=True)
        assert (await refused.get_json())["detail"]["code"] == code
    assert await wait_status(client, app["id"], run["run_id"], owner.headers, {"paused"})

    after = await decide(
        client, app["id"], run["run_id"], owner.headers, events[-1]["id"],
        request_id=request_id, decision="approve", arguments={"patch": OTHER_PATCH},
    )  # fmt: skip
    assert after[-1]["data"]["payload"]["status"] == "completed"
    started = next(e["data"] for e in after if e["data"]["event"] == "tool.started")
    assert started["payload"]["input"] == {"patch": OTHER_PATCH}
    assert "<h1>Reviewed Chat</h1>" in await draft_file(client, app, owner)
    told = json.loads(scripted_openai.bodies[1]["messages"][-1]["content"])
    assert told["reviewer_edited_arguments"] == {"patch": OTHER_PATCH}


def _new_file_patch(size: int) -> str:
    """A valid patch adding src/Big.tsx, at least ``size`` UTF-8 bytes long."""
    line = "+// " + "x" * 75 + "\n"
    count = size // len(line) + 1
    return f"--- /dev/null\n+++ b/src/Big.tsx\n@@ -0,0 +1,{count} @@\n" + line * count


async def test_an_edited_patch_over_the_size_limit_is_refused_at_the_decision(
    client,
    owner,
    paused_on_patch,
    scripted_openai,
    settings,
):
    app, run, events, request_id = paused_on_patch

    big = _new_file_patch(settings.max_patch_bytes)
    refused = await resume(
        client, app, run, owner,
        approval={"request_id": request_id, "decision": "approve", "arguments": {"patch": big}},
    )  # fmt: skip
    assert refused.status_code == 422, await refused.get_data(as_text=True)
    assert (await refused.get_json())["detail"] == {
        "code": "PATCH_TOO_LARGE",
        "field": "approval.arguments.patch",
        "message": f"Patch is {len(big)} bytes; the limit is {settings.max_patch_bytes} bytes",
    }
    # Refused at the decision: the run still waits, and a fitting edit is still taken.
    assert await wait_status(client, app["id"], run["run_id"], owner.headers, {"paused"})
    after = await decide(
        client, app["id"], run["run_id"], owner.headers, events[-1]["id"],
        request_id=request_id, decision="approve", arguments={"patch": OTHER_PATCH},
    )  # fmt: skip
    assert after[-1]["data"]["payload"]["status"] == "completed"
    assert "<h1>Reviewed Chat</h1>" in await draft_file(client, app, owner)


BIG = "x" * 240_001  # over the default RUNWRIGHT_MAX_PATCH_BYTES (240000)


@pytest.mark.parametrize(
    ("policy", "asked", "edited", "code", "field", "message"),
    [
        # A command off the sandbox's allowlist, or one with a shell metacharacter.
        ("commands", {"command": "npm run lint"}, {"command": "curl http://example.com"},
         "BUILDER_PATCH_POLICY_VIOLATION", "command",
         "Command is not allowlisted: curl http://example.com"),
        ("commands", {"command": "npm run lint"}, {"command": "npm run lint; rm -rf ."},
         "BUILDER_PATCH_POLICY_VIOLATION", "command", None),
        ("commands", {"command": "npm run lint"}, {"command": ["npm", "run", "lint", "|"]},
         "BUILDER_PATCH_POLICY_VIOLATION", "command", None),
        # A tool switched off takes no edit (RUNWRIGHT_ENABLE_LEGACY_WRITE_FILE is off by
        # default; tests/api/test_approval_edits.py holds a switched-on write to the limit).
        ("patches", {"path": "src/New.tsx", "content": "x"},
         {"path": "src/New.tsx", "content": "y"}, "LEGACY_WRITE_FILE_DISABLED", None,
         "coding_agent_write_file is deprecated and disabled; use coding_agent_apply_patch"),
        # What a tool writes is held to the patch size limit.
        ("patches", {"path": "src/App.tsx", "old_text": "a", "new_text": "b"},
         {"path": "src/App.tsx", "old_text": "a", "new_text": BIG}, "PATCH_TOO_LARGE",
         "new_text", "new_text is 240001 bytes; the limit is 240000 bytes"),
        ("patches", {"path": "src/App.tsx", "old_text": "a", "new_text": "b"},
         {"path": "src/App.tsx", "old_text": BIG, "new_text": "b"}, "PATCH_TOO_LARGE",
         "old_text", None),
        # Paths outside the workspace, or kept from tools (the path policy).
        ("patches", {"path": "src/App.tsx", "old_text": "a", "new_text": "b"},
         {"path": "../outside.tsx", "old_text": "a", "new_text": "b"},
         "BUILDER_PATCH_POLICY_VIOLATION", "path", None),
        ("patches", {"from_path": "src/App.tsx", "to_path": "src/Main.tsx"},
         {"from_path": "src/App.tsx", "to_path": "/etc/passwd.tsx"},
         "BUILDER_PATCH_POLICY_VIOLATION", "to_path", None),
        ("all", {"entry_file": "src/App.tsx"}, {"entry_file": "../../x.tsx"},
         "BUILDER_PATCH_POLICY_VIOLATION", "entry_file", None),
    ],
    ids=["command-off-allowlist", "command-chained", "command-token-pipe", "write-disabled",
         "edit-new-text", "edit-old-text", "edit-path", "rename-to-path", "checkpoint-entry"],
)  # fmt: skip
async def test_edited_arguments_are_refused_at_the_decision_by_the_tools_own_rules(
    client,
    owner,
    native_app,
    scripted_openai,
    policy,
    asked,
    edited,
    code,
    field,
    message,
):
    """README: edited arguments are checked as the model's would be, at the decision (422,
    the run keeps waiting), not by the tool after the run was queued again."""
    app, _ = native_app
    tool = {
        "command": "coding_agent_run_targeted_tests",
        "content": "coding_agent_write_file",
        "old_text": "coding_agent_edit_file",
        "from_path": "coding_agent_rename_file",
        "entry_file": "coding_agent_create_checkpoint",
    }[min(set(asked) - {"path", "new_text", "to_path"})]
    scripted_openai.push(call(tool, **asked), text_reply("Not reached."))
    run, events = await paused(client, app, owner, input="Go", approval_policy=policy)
    request = events[-2]["data"]["payload"]
    assert request["tool"] == tool

    refused = await resume(
        client, app, run, owner,
        approval={"request_id": request["request_id"], "decision": "approve",
                  "arguments": edited},
    )  # fmt: skip
    assert refused.status_code == 422, await refused.get_data(as_text=True)
    detail = (await refused.get_json())["detail"]
    at = "approval.arguments" if field is None else f"approval.arguments.{field}"
    assert detail["code"] == code and detail["field"] == at
    if message is not None:
        assert detail["message"] == message
    # Nothing was queued: the run still waits on the same request, and the model was not
    # asked again.
    waiting = await wait_status(client, app["id"], run["run_id"], owner.headers, {"paused"})
    assert waiting["pending_approval"]["request_id"] == request["request_id"]
    assert len(scripted_openai.bodies) == 1


async def test_a_repeated_decision_is_answered_with_the_run_and_a_different_one_is_409(
    client,
    owner,
    paused_on_patch,
    scripted_openai,
):
    """A client retrying a decision whose first answer was lost (a 503 from a slow actor
    after the command went through) gets the run, not 409; another decision on the same
    request is still refused."""
    app, run, events, request_id = paused_on_patch
    approval = {"request_id": request_id, "decision": "approve",
                "arguments": {"patch": OTHER_PATCH}}  # fmt: skip

    first = await resume(client, app, run, owner, approval=approval)
    assert first.status_code == 200, await first.get_data(as_text=True)
    again = await resume(client, app, run, owner, approval=approval)
    assert again.status_code == 200, await again.get_data(as_text=True)
    assert (await again.get_json())["run_id"] == run["run_id"]
    for other in (
        {"request_id": request_id, "decision": "reject"},
        {"request_id": request_id, "decision": "approve"},  # the model's arguments
        {**approval, "arguments": {"patch": GOOD_PATCH}},
    ):
        conflict = await resume(client, app, run, owner, approval=other)
        assert conflict.status_code == 409, await conflict.get_data(as_text=True)

    _, after = await read_stream(
        client, app["id"], run["run_id"], owner.headers, after=events[-1]["id"]
    )
    assert after[-1]["data"]["payload"]["status"] == "completed"
    # Applied once: one tool run, one more model call, the edited patch in the draft.
    assert types(after).count("tool.started") == 1
    assert len(scripted_openai.bodies) == 2
    assert "<h1>Reviewed Chat</h1>" in await draft_file(client, app, owner)
    # Still idempotent once the run ended; a different decision still 409.
    late = await resume(client, app, run, owner, approval=approval)
    assert late.status_code == 200, await late.get_data(as_text=True)
    assert (await late.get_json())["status"] == "completed"
    rejected = await resume(
        client, app, run, owner, approval={"request_id": request_id, "decision": "reject"}
    )
    assert rejected.status_code == 409


async def test_wrong_request_and_missing_decision_are_refused(
    client,
    owner,
    native_app,
    scripted_openai,
):
    app, _ = native_app
    scripted_openai.push(call("coding_agent_apply_patch", patch=GOOD_PATCH))
    run, events = await paused(client, app, owner, input="Rename", approval_policy="patches")
    request_id = events[-2]["data"]["payload"]["request_id"]

    wrong = await resume(
        client, app, run, owner, approval={"request_id": "nope", "decision": "approve"}
    )
    assert wrong.status_code == 409
    detail = (await wrong.get_json())["detail"]
    assert detail["code"] == "APPROVAL_NOT_PENDING"
    assert detail["pending_request_id"] == request_id

    missing = await resume(client, app, run, owner, payload={"go": True})
    assert missing.status_code == 422
    assert (await missing.get_json())["detail"]["code"] == "APPROVAL_REQUIRED"

    bad_shape = await resume(
        client, app, run, owner, approval={"request_id": request_id, "decision": "maybe"}
    )
    assert bad_shape.status_code == 422
    assert await wait_status(client, app["id"], run["run_id"], owner.headers, {"paused"})


async def test_an_approval_for_a_run_not_waiting_on_one_is_409(client, owner, app_and_draft):
    app, _ = app_and_draft
    run = await create_run(
        client, app["id"], owner.headers, input="x", engine="scripted",
        script=[{"pause": {}}, {"delta": "after"}],
    )  # fmt: skip
    await wait_status(client, app["id"], run["run_id"], owner.headers, {"paused"})
    response = await resume(
        client, app, run, owner, approval={"request_id": "r", "decision": "approve"}
    )
    assert response.status_code == 409
    assert (await response.get_json())["detail"]["code"] == "APPROVAL_NOT_PENDING"
    # The scripted engine's resume works as before.
    plain = await resume(client, app, run, owner, payload={"go": 1})
    assert plain.status_code == 200
    await wait_status(client, app["id"], run["run_id"], owner.headers, {"completed"})


async def test_policy_none_and_the_app_default(
    client,
    owner,
    native_app,
    scripted_openai,
):
    app, _ = native_app
    url = f"/admin/apps/{app['id']}/coding-agent/settings"
    assert await (await client.get(url, headers=owner.headers)).get_json() == {
        "approval_policy": "none"
    }
    # Default none: the command tool runs without asking (today's behaviour).
    scripted_openai.push(call("coding_agent_apply_patch", patch=GOOD_PATCH), text_reply("ok"))
    run = await create_run(client, app["id"], owner.headers, input="Rename")
    _, events = await read_stream(client, app["id"], run["run_id"], owner.headers)
    assert "approval.requested" not in types(events)
    assert events[-1]["data"]["payload"]["status"] == "completed"

    put = await client.put(url, json={"approval_policy": "patches"}, headers=owner.headers)
    assert put.status_code == 200 and (await put.get_json())["approval_policy"] == "patches"
    bad = await client.put(url, json={"approval_policy": "sometimes"}, headers=owner.headers)
    assert bad.status_code == 422
    scripted_openai.push(call("coding_agent_apply_patch", patch=OTHER_PATCH))
    await paused(client, app, owner, input="Rename again")
    # A run's own policy wins over the app's.
    scripted_openai.push(call("coding_agent_apply_patch", patch=GOOD_PATCH), text_reply("ok"))
    run = await create_run(client, app["id"], owner.headers, input="x", approval_policy="commands")
    _, events = await read_stream(client, app["id"], run["run_id"], owner.headers)
    assert events[-1]["data"]["payload"]["status"] == "completed"


async def test_a_pause_without_a_decision_fails_closed(
    client,
    owner,
    native_app,
    scripted_openai,
):
    app, _ = native_app
    scripted_openai.push(call("coding_agent_apply_patch", patch=GOOD_PATCH))
    run, events = await paused(
        client, app, owner, input="Rename", approval_policy="patches", approval_timeout_seconds=1
    )
    assert events[-2]["data"]["payload"]["timeout_seconds"] == 1
    failed = await wait_status(client, app["id"], run["run_id"], owner.headers, {"failed"})
    assert "No approval decision within 1 seconds" in failed["error"]
    _, after = await read_stream(
        client, app["id"], run["run_id"], owner.headers, after=events[-1]["id"]
    )
    assert types(after) == ["run.failed"]
    assert after[0]["data"]["diagnostics"][0]["code"] == "APPROVAL_TIMEOUT"
    late = await resume(
        client, app, run, owner,
        approval={"request_id": events[-2]["data"]["payload"]["request_id"],
                  "decision": "approve"},
    )  # fmt: skip
    assert late.status_code == 409
    assert len(scripted_openai.bodies) == 1


async def test_a_boolean_approval_timeout_is_422(client, owner, app_and_draft):
    """``true`` is not a number of seconds (pydantic's lax mode read it as 1 s)."""
    app, _ = app_and_draft
    response = await client.post(
        runs_url(app["id"]),
        json={"input": "x", "approval_policy": "all", "approval_timeout_seconds": True},
        headers=owner.headers,
    )
    assert response.status_code == 422, await response.get_data(as_text=True)
    detail = (await response.get_json())["detail"]
    assert detail[0]["loc"][-1] == "approval_timeout_seconds"
    assert "boolean" in detail[0]["msg"]
