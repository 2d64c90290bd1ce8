"""Runs of one app execute in parallel, each in its own workspace (issue 11 item 4;
runtime/run_workspaces.py), through the HTTP API against a scripted model server.

Every run here waits in a model call until the test opens its gate, so "both running at
once" is a fact the test observes (both runs' statuses and tool events while both wait),
never a matter of timing.
"""

from __future__ import annotations

import os
import threading
import uuid
from typing import Any

import pytest

from tests.support.api import create_app_via_api
from tests.support.openai_script import Reply, call, per_prompt
from tests.support.patches import GREETING_PATCH, add_file, heading_patch
from tests.support.runs import (
    LiveStream,
    create_run,
    read_stream,
    runs_url,
    types,
    wait_removed,
    wait_status,
)
from tests.support.sandbox import needs_bwrap
from tests.support.scripted_openai import text_reply

LIST_COMMAND = "ls -a /work /work/app /work/app/notes"
TRUNCATE_COMMAND = "truncate -s 0 src/styles.css"  # writes in place: same inode
WITHIN = 120.0  # generous: a loaded 2-core machine

HEADING_PATCH = heading_patch("Runwright Chat")
CLASHING_PATCH = heading_patch("Gossip Chat")


@pytest.fixture
def settings(make_settings):
    return make_settings(
        scripted_engine_enabled=True, command_allowlist=(LIST_COMMAND, TRUNCATE_COMMAND)
    )


def tool_outputs(events: list[dict[str, Any]]) -> list[Any]:
    return [e["data"]["payload"]["output"] for e in events
            if e["data"]["event"] in ("tool.completed", "tool.failed")]  # fmt: skip


async def all_waiting(client, app_id, headers, tools: dict[str, int]) -> list[list[dict]]:
    """Wait until each run (id -> count) has finished that many tool calls, then check
    that every one is ``running`` now (each waits at its gate): they execute at once."""
    seen = []
    for run_id, count in tools.items():
        url = runs_url(app_id, f"/{run_id}/stream")
        async with LiveStream(client, url, headers) as stream:
            events = await stream.until(
                lambda evs, n=count: (
                    sum(t in ("tool.completed", "tool.failed") for t in types(evs)) >= n
                ),
                within=WITHIN,
            )
        assert "run.failed" not in types(events), events
        seen.append(events)
    for run_id in tools:
        run = await (await client.get(runs_url(app_id, f"/{run_id}"), headers=headers)).get_json()
        assert run["status"] == "running", run
    return seen


async def test_two_runs_on_one_app_execute_at_once_each_in_its_own_workspace(
    client,
    owner,
    native_app,
    scripted_openai,
    settings,
):
    app, draft = native_app
    gate_a, gate_b = threading.Event(), threading.Event()
    scripted_openai.default = per_prompt({
        "A: rename": [
            call("coding_agent_apply_patch", patch=HEADING_PATCH),
            Reply(text_chunks=("A done",), gate=gate_a),
        ],
        "B: look": [
            call("coding_agent_read_file", path="src/App.tsx"),
            Reply(text_chunks=("B looked",), gate=gate_b),
        ],
    })  # fmt: skip
    a = await create_run(client, app["id"], owner.headers, input="A: rename")
    b = await create_run(client, app["id"], owner.headers, input="B: look")
    _, b_events = await all_waiting(
        client, app["id"], owner.headers, {a["run_id"]: 1, b["run_id"]: 1}
    )
    # B works on its own copy of the base revision: A's edit is not in it
    assert "<h1>Chat</h1>" in tool_outputs(b_events)[0]["content"]
    runs_dir = settings.runs_dir / "run"
    assert {a["run_id"], b["run_id"]} <= set(os.listdir(runs_dir))

    gate_a.set()
    done_a = await wait_status(client, app["id"], a["run_id"], owner.headers,
                               {"completed", "failed"}, within=WITHIN)  # fmt: skip
    assert done_a["status"] == "completed", done_a["error"]
    gate_b.set()
    done_b = await wait_status(client, app["id"], b["run_id"], owner.headers,
                               {"completed", "failed"}, within=WITHIN)  # fmt: skip
    assert done_b["status"] == "completed", done_b["error"]
    assert done_b["result_revision_id"] is None  # B changed nothing
    state = await (await client.get(f"/admin/apps/{app['id']}/builder/state",
                                    headers=owner.headers)).get_json()  # fmt: skip
    assert state["current_draft_revision"]["id"] == done_a["result_revision_id"]
    assert "<h1>Runwright Chat</h1>" in state["current_draft_revision"]["files"]["src/App.tsx"]
    assert draft["id"] != done_a["result_revision_id"]
    # each run's workspace is gone once it ended
    await wait_removed(runs_dir / a["run_id"])
    await wait_removed(runs_dir / b["run_id"])


@needs_bwrap
async def test_a_sandboxed_command_sees_only_its_own_runs_files(
    client,
    owner,
    native_app,
    scripted_openai,
    settings,
):
    app, _ = native_app
    gate_a, gate_b = threading.Event(), threading.Event()
    scripted_openai.default = per_prompt({
        "A: list": [
            call("coding_agent_apply_patch", patch=add_file("notes/a-own.md", "mine")),
            call("coding_agent_run_targeted_tests", command=LIST_COMMAND),
            Reply(text_chunks=("A listed",), gate=gate_a),
        ],
        "B: hide": [
            call("coding_agent_apply_patch", patch=add_file("notes/b-secret.md", "B's")),
            Reply(text_chunks=("B hid",), gate=gate_b),
        ],
    })  # fmt: skip
    b = await create_run(client, app["id"], owner.headers, input="B: hide")
    await all_waiting(client, app["id"], owner.headers, {b["run_id"]: 1})
    secret = settings.runs_dir / "run" / b["run_id"] / "notes" / "b-secret.md"
    assert secret.read_text() == "B's\n"  # B's file exists on the host, B still running
    a = await create_run(client, app["id"], owner.headers, input="A: list")
    a_events, _ = await all_waiting(
        client, app["id"], owner.headers, {a["run_id"]: 2, b["run_id"]: 1}
    )
    listing = tool_outputs(a_events)[1]
    assert listing["ok"] is True, listing
    stdout = listing["result"]["stdout"]
    assert "a-own.md" in stdout and "index.html" in stdout
    assert "b-secret.md" not in stdout and b["run_id"] not in stdout
    assert sorted(stdout.split("/work:\n")[1].split("\n\n")[0].split()) == [
        ".", "..", "app", "node_modules"
    ]  # fmt: skip
    gate_a.set()
    gate_b.set()
    for run in (a, b):
        done = await wait_status(client, app["id"], run["run_id"], owner.headers,
                                 {"completed", "failed"}, within=WITHIN)  # fmt: skip
        assert done["status"] in ("completed", "failed")


@needs_bwrap
async def test_a_run_cannot_change_the_shared_revision_cache(
    client,
    owner,
    native_app,
    scripted_openai,
    settings,
):
    """Run A empties a file in place (``truncate``: the same inode, as a write through a
    hard link would be) in its workspace; the cached base revision and run B, started
    afterwards from the same base, still have the original file."""
    app, draft = native_app
    original = draft["files"]["src/styles.css"]
    assert original
    gate_a = threading.Event()
    scripted_openai.default = per_prompt({
        "A: truncate": [
            call("coding_agent_run_targeted_tests", command=TRUNCATE_COMMAND),
            Reply(text_chunks=("A emptied it",), gate=gate_a),
        ],
        "B: read": [
            call("coding_agent_read_file", path="src/styles.css"),
            text_reply("B read it"),
        ],
    })  # fmt: skip
    a = await create_run(client, app["id"], owner.headers, input="A: truncate")
    [a_events] = await all_waiting(client, app["id"], owner.headers, {a["run_id"]: 1})
    assert tool_outputs(a_events)[0]["ok"] is True, tool_outputs(a_events)
    mine = settings.runs_dir / "run" / a["run_id"] / "src" / "styles.css"
    cached = settings.runs_dir / "revisions" / draft["id"] / "src" / "styles.css"
    assert mine.read_text() == ""
    assert cached.read_text() == original
    assert os.stat(cached).st_nlink == 1  # no run workspace links to it

    b = await create_run(client, app["id"], owner.headers, input="B: read")
    assert b["base_revision_id"] == draft["id"]
    done_b = await wait_status(client, app["id"], b["run_id"], owner.headers,
                               {"completed", "failed"}, within=WITHIN)  # fmt: skip
    assert done_b["status"] == "completed", done_b["error"]
    _, b_events = await read_stream(client, app["id"], b["run_id"], owner.headers, within=WITHIN)
    assert tool_outputs(b_events)[0]["content"] == original
    gate_a.set()
    await wait_status(client, app["id"], a["run_id"], owner.headers,
                      {"completed", "failed"}, within=WITHIN)  # fmt: skip


async def test_start_up_removes_workspaces_of_runs_no_longer_live(
    client,
    owner,
    services,
    settings,
):
    """The start-up sweep keeps the workspaces of queued, running and paused runs (on any
    node) and removes the rest: finished runs, and directories of no run at all."""
    app, _ = await create_app_via_api(client, owner.headers)
    # scripted runs have no workspace of their own; the sweep goes by status only
    paused = await create_run(client, app["id"], owner.headers, input="p", engine="scripted",
                              script=[{"pause": {"why": "approval"}}])  # fmt: skip
    done = await create_run(client, app["id"], owner.headers, input="d", engine="scripted",
                            script=[{"delta": "hi"}])  # fmt: skip
    await wait_status(client, app["id"], paused["run_id"], owner.headers, {"paused"}, WITHIN)
    await wait_status(client, app["id"], done["run_id"], owner.headers, {"completed"}, WITHIN)
    runs_dir = settings.runs_dir / "run"
    stray = str(uuid.uuid4())
    for name in (paused["run_id"], done["run_id"], stray):
        (runs_dir / name).mkdir(parents=True)
        (runs_dir / name / "index.html").write_text("x")
    await services.sweep_workspaces()
    assert sorted(os.listdir(runs_dir)) == [paused["run_id"]]


async def _gated_pair(client, owner, app, scripted_openai, b_patches):
    """Runs A (renames the heading) and B (applies ``b_patches``), both executing at once
    and waiting at their gates; A is let go first and completes. Returns (A, B, gate B)."""
    gate_a, gate_b = threading.Event(), threading.Event()
    scripted_openai.default = per_prompt({
        "A: heading": [
            call("coding_agent_apply_patch", patch=HEADING_PATCH),
            Reply(text_chunks=("A done",), gate=gate_a),
        ],
        "B: edit": [
            *(call("coding_agent_apply_patch", patch=p) for p in b_patches),
            Reply(text_chunks=("B done",), gate=gate_b),
        ],
    })  # fmt: skip
    a = await create_run(client, app["id"], owner.headers, input="A: heading")
    b = await create_run(client, app["id"], owner.headers, input="B: edit")
    assert a["base_revision_id"] == b["base_revision_id"]
    await all_waiting(
        client, app["id"], owner.headers, {a["run_id"]: 1, b["run_id"]: len(b_patches)}
    )
    gate_a.set()
    done_a = await wait_status(client, app["id"], a["run_id"], owner.headers,
                               {"completed", "failed"}, within=WITHIN)  # fmt: skip
    assert done_a["status"] == "completed", done_a["error"]
    return done_a, b, gate_b


async def test_a_clean_merge_keeps_both_runs_edits(
    client,
    owner,
    native_app,
    scripted_openai,
):
    """The draft moved (A applied) while B worked on the same file elsewhere and added a
    file: B's changes merge onto A's revision; the new draft has both."""
    app, draft = native_app
    patches = [GREETING_PATCH, add_file("notes/b.md", "from B")]
    done_a, b, gate_b = await _gated_pair(client, owner, app, scripted_openai, patches)
    gate_b.set()
    _, events = await read_stream(client, app["id"], b["run_id"], owner.headers, within=WITHIN)
    assert types(events)[-3:] == ["revision.created", "checkpoint.created", "run.completed"]
    final = events[-1]["data"]["payload"]
    assert final["status"] == "completed", final["error"]
    revision_id = events[-3]["data"]["payload"]["revision_id"]
    assert final["result_revision_id"] == final["checkpoint_revision_id"] == revision_id

    state = await (await client.get(f"/admin/apps/{app['id']}/builder/state",
                                    headers=owner.headers)).get_json()  # fmt: skip
    merged = state["current_draft_revision"]
    assert merged["id"] == revision_id
    assert merged["source_revision_id"] == done_a["result_revision_id"]  # on top of A's
    app_tsx = merged["files"]["src/App.tsx"]
    assert "<h1>Runwright Chat</h1>" in app_tsx and "Welcome! Ask me anything." in app_tsx
    assert merged["files"]["notes/b.md"] == "from B\n"
    untouched = {p: t for p, t in draft["files"].items() if p != "src/App.tsx"}
    assert {p: merged["files"][p] for p in untouched} == untouched
    # the checkpoint is the merged revision, and restoring it restores the merge
    restored = await client.post(
        f"/admin/apps/{app['id']}/coding-agent/checkpoints/{revision_id}/restore",
        json={"run_id": b["run_id"]}, headers=owner.headers,
    )  # fmt: skip
    assert restored.status_code == 200, await restored.get_data(as_text=True)
    assert (await restored.get_json())["revision"]["files"] == merged["files"]


async def test_a_real_conflict_fails_the_run_listing_the_file(
    client,
    owner,
    native_app,
    scripted_openai,
):
    """B changed the line A changed: B fails with REVISION_CONFLICT naming the file, and
    none of B's changes (not even its new file) reach the draft."""
    app, _ = native_app
    patches = [CLASHING_PATCH, add_file("notes/b.md", "from B")]
    done_a, b, gate_b = await _gated_pair(client, owner, app, scripted_openai, patches)
    gate_b.set()
    _, events = await read_stream(client, app["id"], b["run_id"], owner.headers, within=WITHIN)
    assert types(events)[-1] == "run.failed"
    assert "revision.created" not in types(events)
    failed = events[-1]["data"]
    diagnostic = failed["diagnostics"][0]
    assert diagnostic["code"] == "REVISION_CONFLICT"
    assert diagnostic["paths"] == ["src/App.tsx"]
    run = failed["payload"]
    assert run["status"] == "failed" and "src/App.tsx" in run["error"]
    assert run["result_revision_id"] is None
    state = await (await client.get(f"/admin/apps/{app['id']}/builder/state",
                                    headers=owner.headers)).get_json()  # fmt: skip
    assert state["current_draft_revision"]["id"] == done_a["result_revision_id"]
    assert "notes/b.md" not in state["current_draft_revision"]["files"]
