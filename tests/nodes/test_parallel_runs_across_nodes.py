"""Runs of one app executing at once on different ``runwright serve`` processes, one
Postgres (issue 11 items 4 and 7): at auto-apply, and at the agent's ``create_checkpoint``,
each run's changes are merged three-way onto the draft the others moved (every change ends
up in the final draft), and only a real overlap fails with ``REVISION_CONFLICT`` listing
the files (the run, or the checkpoint tool call), leaving the first run's change intact.

Every node has one execution slot, so runs that wait at once execute on different nodes
(the test also checks the lease owners). The native engine talks to one scripted model
server in this process; each run waits in its last model call until the test opens its
gate, so "executing at once" is observed, never a matter of timing.
"""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from typing import Any

import httpx

from tests.support.fixtures_openai import scripted_openai  # noqa: F401
from tests.support.nodes import (
    Node,
    create_app,
    lease_owner,
    operator_model,
    seed_owner,
    start_nodes,
)
from tests.support.openai_script import Reply, calls_for, per_prompt
from tests.support.patches import GREETING_PATCH, STYLE_PATCH, add_file, heading_patch
from tests.support.runs import parse_sse
from tests.support.scripted_openai import ScriptedOpenAI, ScriptedToolCall, tool_call_reply
from tests.support.serve_process import until

WITHIN = 120.0  # generous: three processes on a loaded 2-core machine
ONE_SLOT = {"RUNWRIGHT_MAX_LIVE_RUNS": "1"}


def call(name: str, **arguments: Any) -> Reply:
    return tool_call_reply(ScriptedToolCall(name, arguments))


def patch_call(patch: str) -> Reply:
    return call("coding_agent_apply_patch", patch=patch)


def tool_results(events: list[dict[str, Any]], tool: str) -> list[tuple[str, Any]]:
    """``(event type, output)`` of each finished call of ``tool``, in order."""
    return [(e["data"]["event"], e["data"]["payload"]["output"]) for e in events
            if e["data"]["event"] in ("tool.completed", "tool.failed")
            and e["data"]["payload"]["tool"] == tool]  # fmt: skip


def runs_path(app_id: str, suffix: str = "") -> str:
    return f"/admin/apps/{app_id}/coding-agent/runs{suffix}"


async def create_native_run(http: httpx.AsyncClient, app_id: str, prompt: str) -> dict[str, Any]:
    response = await http.post(runs_path(app_id), json={"input": prompt})
    assert response.status_code == 200, response.text
    return dict(response.json())


async def events_of(http: httpx.AsyncClient, app_id: str, run_id: str) -> list[dict[str, Any]]:
    """The run's whole event log, read through its stream (it ends at the terminal event)."""
    response = await http.get(runs_path(app_id, f"/{run_id}/stream"), timeout=WITHIN)
    assert response.status_code == 200, response.text
    return parse_sse(response.text)


def kinds(events: list[dict[str, Any]]) -> list[str]:
    return [e["data"]["event"] for e in events]


async def draft_of(http: httpx.AsyncClient, app_id: str) -> dict[str, Any]:
    response = await http.get(f"/admin/apps/{app_id}/builder/state")
    assert response.status_code == 200, response.text
    return dict(response.json()["current_draft_revision"])


async def start_waiting(
    database_url: str,
    nodes: list[Node],
    server: ScriptedOpenAI,
    http: httpx.AsyncClient,
    app_id: str,
    scripts: dict[str, list[Reply]],
) -> dict[str, dict[str, Any]]:
    """Create one run per prompt of ``scripts``, each through its own node, and wait until
    every one waits in its last (gated) model call; check they run on distinct nodes.
    Returns the created runs by prompt."""
    server.default = per_prompt(scripts)
    created: dict[str, dict[str, Any]] = {}
    for node, prompt in zip(nodes, scripts, strict=False):
        async with node.http(http.headers) as on_node:
            created[prompt] = await create_native_run(on_node, app_id, prompt)
        steps = 1 + next(i for i, reply in enumerate(scripts[prompt]) if reply.gate is not None)
        await until(lambda p=prompt, n=steps: calls_for(server.bodies, p) >= n,
                    within=WITHIN, what=f"run {prompt!r} to reach its gate")  # fmt: skip
    owners = [await lease_owner(database_url, run["run_id"]) for run in created.values()]
    assert len(set(owners)) == len(owners) and None not in owners, owners  # one per node
    return created


async def finish(
    http: httpx.AsyncClient, app_id: str, run: dict[str, Any], gate: threading.Event
) -> list[dict[str, Any]]:
    """Open ``run``'s gate and return its whole event log once it ended."""
    gate.set()
    return await events_of(http, app_id, run["run_id"])


async def test_three_runs_on_three_nodes_merge_into_one_draft(
    database_url: str,
    tmp_path: Path,
    scripted_openai: ScriptedOpenAI,  # noqa: F811
) -> None:
    """A renames the heading, B changes the greeting (another part of the same file) and
    adds a file, C changes the stylesheet; all three start from the same draft and wait at
    once, each on its own node. They end one after the other: B's changes are merged onto
    A's revision and C's onto B's, so the final draft holds all of them."""
    owner = await seed_owner(database_url)
    await operator_model(database_url, scripted_openai.base_url)
    gates = [threading.Event() for _ in range(3)]
    scripts = {
        "A: heading": [patch_call(heading_patch("Runwright Chat")),
                       Reply(text_chunks=("A done",), gate=gates[0])],
        "B: greeting": [patch_call(GREETING_PATCH), patch_call(add_file("notes/b.md", "from B")),
                        Reply(text_chunks=("B done",), gate=gates[1])],
        "C: colour": [patch_call(STYLE_PATCH), Reply(text_chunks=("C done",), gate=gates[2])],
    }  # fmt: skip
    async with start_nodes(3, database_url=database_url, root=tmp_path, env=ONE_SLOT) as nodes:
        async with nodes[0].http(owner.headers) as http:
            app_id = await create_app(http)
            base = await draft_of(http, app_id)
            runs = await start_waiting(database_url, nodes, scripted_openai, http, app_id, scripts)
            assert {run["base_revision_id"] for run in runs.values()} == {base["id"]}

            results = []
            for run, gate in zip(runs.values(), gates, strict=True):
                events = await finish(http, app_id, run, gate)
                assert kinds(events)[-3:] == [
                    "revision.created", "checkpoint.created", "run.completed"
                ], kinds(events)  # fmt: skip
                final = events[-1]["data"]["payload"]
                assert final["status"] == "completed", final["error"]
                results.append(final["result_revision_id"])
            draft = await draft_of(http, app_id)

    assert draft["id"] == results[-1]
    files = draft["files"]
    app_tsx = files["src/App.tsx"]
    assert "<h1>Runwright Chat</h1>" in app_tsx  # A, on node a
    assert "Welcome! Ask me anything." in app_tsx  # B, on node b, merged onto A's
    assert files["notes/b.md"] == "from B\n"
    assert "color: #102030;" in files["src/styles.css"]  # C, on node c, merged onto B's
    untouched = {p: t for p, t in base["files"].items()
                 if p not in ("src/App.tsx", "src/styles.css")}  # fmt: skip
    assert {p: files[p] for p in untouched} == untouched
    assert set(files) == set(base["files"]) | {"notes/b.md"}


async def test_a_real_conflict_across_nodes_fails_the_second_run(
    database_url: str,
    tmp_path: Path,
    scripted_openai: ScriptedOpenAI,  # noqa: F811
) -> None:
    """A and B change the same heading line, at once on two nodes. A ends first and
    applies; B fails with REVISION_CONFLICT naming src/App.tsx, and nothing of B (not even
    its new file) reaches the draft, which stays A's revision."""
    owner = await seed_owner(database_url)
    await operator_model(database_url, scripted_openai.base_url)
    gate_a, gate_b = threading.Event(), threading.Event()
    scripts = {
        "A: heading": [patch_call(heading_patch("Runwright Chat")),
                       Reply(text_chunks=("A done",), gate=gate_a)],
        "B: clash": [patch_call(heading_patch("Gossip Chat")),
                     patch_call(add_file("notes/b.md", "from B")),
                     Reply(text_chunks=("B done",), gate=gate_b)],
    }  # fmt: skip
    async with start_nodes(2, database_url=database_url, root=tmp_path, env=ONE_SLOT) as nodes:
        async with nodes[1].http(owner.headers) as http:
            app_id = await create_app(http)
            runs = await start_waiting(database_url, nodes, scripted_openai, http, app_id, scripts)
            a, b = runs.values()
            a_events = await finish(http, app_id, a, gate_a)
            assert a_events[-1]["data"]["payload"]["status"] == "completed"
            a_revision = a_events[-1]["data"]["payload"]["result_revision_id"]
            b_events = await finish(http, app_id, b, gate_b)
            draft = await draft_of(http, app_id)
            b_run = (await http.get(runs_path(app_id, f"/{b['run_id']}"))).json()

    assert kinds(b_events)[-1] == "run.failed"
    assert "revision.created" not in kinds(b_events)
    diagnostic = b_events[-1]["data"]["diagnostics"][0]
    assert diagnostic["code"] == "REVISION_CONFLICT"
    assert diagnostic["paths"] == ["src/App.tsx"]
    assert b_run["status"] == "failed" and "src/App.tsx" in b_run["error"]
    assert b_run["result_revision_id"] is None
    assert draft["id"] == a_revision  # A's change intact
    assert "<h1>Runwright Chat</h1>" in draft["files"]["src/App.tsx"]
    assert "notes/b.md" not in draft["files"]


CHECKPOINT = "coding_agent_create_checkpoint"
GREETING_AGAIN = GREETING_PATCH.replace('-  text: "Hello!', '-  text: "Welcome!').replace(
    '+  text: "Welcome!', '+  text: "Welcome back!'
)  # the line B changed before its first checkpoint, changed again


async def test_the_agents_checkpoint_merges_onto_a_draft_another_node_moved(
    database_url: str,
    tmp_path: Path,
    scripted_openai: ScriptedOpenAI,  # noqa: F811
) -> None:
    """B (node b) changes the greeting while A (node a) renames the heading and applies.
    B's create_checkpoint then merges onto A's revision instead of overwriting it, and
    brings B's workspace up to the merge (B reads A's heading). B changes its greeting
    line again and checkpoints again: merged against its first checkpoint (no false
    conflict on the line it changed twice). The draft ends with A's and B's changes."""
    owner = await seed_owner(database_url)
    await operator_model(database_url, scripted_openai.base_url)
    gate_a, gate_b = threading.Event(), threading.Event()
    scripts = {
        "A: heading": [patch_call(heading_patch("Runwright Chat")),
                       Reply(text_chunks=("A done",), gate=gate_a)],
        "B: checkpoints": [
            patch_call(GREETING_PATCH),
            dataclasses.replace(call(CHECKPOINT), gate=gate_b),
            call("coding_agent_read_file", path="src/App.tsx"),
            patch_call(GREETING_AGAIN),
            call(CHECKPOINT),
            Reply(text_chunks=("B done",)),
        ],
    }  # fmt: skip
    async with start_nodes(2, database_url=database_url, root=tmp_path, env=ONE_SLOT) as nodes:
        async with nodes[0].http(owner.headers) as http:
            app_id = await create_app(http)
            a, b = (await start_waiting(database_url, nodes, scripted_openai, http, app_id,
                                        scripts)).values()  # fmt: skip
            a_events = await finish(http, app_id, a, gate_a)
            a_revision = a_events[-1]["data"]["payload"]["result_revision_id"]
            assert a_revision is not None
            b_events = await finish(http, app_id, b, gate_b)
            draft = await draft_of(http, app_id)
            first_id = tool_results(b_events, CHECKPOINT)[0][1].get("checkpoint_revision_id")
            first_checkpoint = (await http.get(f"/admin/apps/{app_id}/revisions/{first_id}")).json()

    assert b_events[-1]["data"]["payload"]["status"] == "completed", b_events[-1]
    (first_kind, first), (second_kind, second) = tool_results(b_events, CHECKPOINT)
    assert first_kind == second_kind == "tool.completed", (first, second)
    assert first["merged_onto_revision_id"] == a_revision
    assert first_checkpoint["source_revision_id"] == a_revision
    merged = first_checkpoint["files"]["src/App.tsx"]
    assert "<h1>Runwright Chat</h1>" in merged and "Welcome! Ask me anything." in merged
    [(_, read)] = tool_results(b_events, "coding_agent_read_file")
    assert "<h1>Runwright Chat</h1>" in read["content"]  # B's workspace got A's change
    assert "merged_onto_revision_id" not in second  # the draft was B's own checkpoint
    assert draft["id"] == second["checkpoint_revision_id"]
    final = draft["files"]["src/App.tsx"]
    assert "<h1>Runwright Chat</h1>" in final and "Welcome back! Ask me anything." in final


async def test_an_overlapping_checkpoint_is_a_tool_error_and_the_draft_keeps_the_other_change(
    database_url: str,
    tmp_path: Path,
    scripted_openai: ScriptedOpenAI,  # noqa: F811
) -> None:
    """B changes the heading line A changed and applied on the other node: B's
    create_checkpoint answers REVISION_CONFLICT naming src/App.tsx (a tool error the model
    sees; the run goes on) and writes nothing; at its end B fails with REVISION_CONFLICT;
    the draft stays A's revision."""
    owner = await seed_owner(database_url)
    await operator_model(database_url, scripted_openai.base_url)
    gate_a, gate_b = threading.Event(), threading.Event()
    scripts = {
        "A: heading": [patch_call(heading_patch("Runwright Chat")),
                       Reply(text_chunks=("A done",), gate=gate_a)],
        "B: clash": [patch_call(heading_patch("Gossip Chat")),
                     dataclasses.replace(call(CHECKPOINT), gate=gate_b),
                     Reply(text_chunks=("B gives up",))],
    }  # fmt: skip
    async with start_nodes(2, database_url=database_url, root=tmp_path, env=ONE_SLOT) as nodes:
        async with nodes[1].http(owner.headers) as http:
            app_id = await create_app(http)
            a, b = (await start_waiting(database_url, nodes, scripted_openai, http, app_id,
                                        scripts)).values()  # fmt: skip
            a_events = await finish(http, app_id, a, gate_a)
            a_revision = a_events[-1]["data"]["payload"]["result_revision_id"]
            b_events = await finish(http, app_id, b, gate_b)
            draft = await draft_of(http, app_id)

    [(kind, output)] = tool_results(b_events, CHECKPOINT)
    assert kind == "tool.failed"
    assert output["code"] == "REVISION_CONFLICT" and output["paths"] == ["src/App.tsx"]
    assert "src/App.tsx" in output["error"]
    # The model was told and answered; the run then failed at auto-apply, as the tool said.
    assert len([b for b in scripted_openai.bodies if calls_for([b], "B: clash")]) == 3
    assert b_events[-1]["data"]["event"] == "run.failed"
    assert b_events[-1]["data"]["diagnostics"][0]["code"] == "REVISION_CONFLICT"
    assert draft["id"] == a_revision
    assert "<h1>Runwright Chat</h1>" in draft["files"]["src/App.tsx"]
