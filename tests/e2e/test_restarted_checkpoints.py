"""A run taken over after it made a checkpoint (kill -9 of its node under the ``requeue``
restart policy, or SIGTERM: handed back after the grace period) goes on from that
checkpoint on the node that takes it: its new workspace is made
from the checkpoint, the same revision its next checkpoint merges against, so nothing the
first attempt checkpointed is reverted (runtime.checkpoints.workspace_origin). An attempt
whose model calls no tool still reports the revision the run produced.

Two real ``runwright serve`` processes on one Postgres, each with its own data directory
(node b never had the runs' workspaces); the native engine talks to one scripted model
server in this process, answering each run by its prompt, in order, across attempts.
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from runtime.secret_box import new_key_text
from tests.support.fixtures_openai import scripted_openai  # noqa: F401
from tests.support.nodes import create_app, operator_model, seed_owner, start_nodes
from tests.support.openai_script import Reply, hang_reply, text_reply
from tests.support.patches import add_file
from tests.support.runs import parse_sse
from tests.support.scripted_openai import ScriptedOpenAI, ScriptedToolCall, tool_call_reply
from tests.support.serve_process import until

WITHIN = 120.0  # generous: two processes on a loaded 2-core machine
CHECKPOINT = "coding_agent_create_checkpoint"
ENV = {
    "RUNWRIGHT_RESTART_POLICY": "requeue",
    "RUNWRIGHT_NODE_HEARTBEAT_SECONDS": "0.5",
    "RUNWRIGHT_NODE_DEAD_SECONDS": "2",
    "RUNWRIGHT_CLAIM_POLL_SECONDS": "0.2",
    "RUNWRIGHT_SHUTDOWN_GRACE_SECONDS": "0.5",
}


def call(name: str, **arguments: Any) -> Reply:
    return tool_call_reply(ScriptedToolCall(name, arguments))


def add(path: str, text: str) -> Reply:
    return call("coding_agent_apply_patch", patch=add_file(path, text))


def in_order(scripts: dict[str, list[Reply]]) -> Callable[[dict[str, Any]], Reply]:
    """Answer each run (by its prompt) with its replies in order, whichever attempt asks:
    a restarted native attempt starts its conversation over."""
    queues = {prompt: deque(replies) for prompt, replies in scripts.items()}

    def answer(body: dict[str, Any]) -> Reply:
        prompt = next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")
        return queues[prompt].popleft()

    return answer


async def events_of(http: httpx.AsyncClient, runs: str, run_id: str) -> list[dict[str, Any]]:
    """The run's whole event log through its stream (it ends at the terminal event)."""
    response = await http.get(f"{runs}/{run_id}/stream", timeout=WITHIN)
    assert response.status_code == 200, response.text
    return parse_sse(response.text)


def tool_outputs(events: list[dict[str, Any]], tool: str) -> list[tuple[str, Any]]:
    return [(e["data"]["event"], e["data"]["payload"]["output"]) for e in events
            if e["data"]["event"] in ("tool.completed", "tool.failed")
            and e["data"]["payload"]["tool"] == tool]  # fmt: skip


@pytest.mark.parametrize("stop", ["kill -9", "SIGTERM"])
async def test_a_run_taken_over_after_a_checkpoint_goes_on_from_it(
    database_url: str,
    tmp_path: Path,
    scripted_openai: ScriptedOpenAI,  # noqa: F811
    stop: str,
) -> None:
    """Two runs (two apps) on node a each add a file and checkpoint it, then wait in their
    model call; a is killed (or drains on SIGTERM) and b takes both over (requeued).
    "more" adds a second file and checkpoints again on b: the draft keeps the first file
    (before, b made the workspace from the base revision and the checkpoint, merged
    against the first checkpoint, deleted it). "quiet" answers with text only on b: its
    run still ends with revision.created and checkpoint.created for the checkpoint it made
    on a."""
    owner = await seed_owner(database_url)
    await operator_model(database_url, scripted_openai.base_url)
    scripted_openai.default = in_order({
        "more": [add("notes/one.md", "from a"), call(CHECKPOINT), hang_reply(),
                 add("notes/two.md", "from b"), call(CHECKPOINT), text_reply("more done")],
        "quiet": [add("notes/three.md", "from a"), call(CHECKPOINT), hang_reply(),
                  text_reply("nothing more")],
    })  # fmt: skip
    env = {**ENV, "RUNWRIGHT_SECRETS_KEY": new_key_text()}
    conn = await asyncpg.connect(database_url)
    try:
        async with start_nodes(1, database_url=database_url, root=tmp_path, env=env,
                               prefix="a") as (a,):  # fmt: skip
            async with a.http(owner.headers) as http:
                apps = {prompt: await create_app(http) for prompt in ("more", "quiet")}
                runs = {p: f"/admin/apps/{app}/coding-agent/runs" for p, app in apps.items()}
                ids = {}
                for prompt, url in runs.items():
                    response = await http.post(url, json={"input": prompt})
                    assert response.status_code == 200, response.text
                    ids[prompt] = response.json()["run_id"]

            async def checkpointed_and_waiting() -> bool:
                rows = await conn.fetch(
                    "SELECT lease_owner, checkpoint_revision_id FROM agent_runs "
                    "WHERE id = ANY($1::uuid[])", [uuid.UUID(i) for i in ids.values()],
                )  # fmt: skip
                recorded = all(r["checkpoint_revision_id"] is not None and
                               r["lease_owner"] == a.node_id for r in rows)  # fmt: skip
                return recorded and len(scripted_openai.bodies) >= 6  # both at the hang

            await until(checkpointed_and_waiting, within=WITHIN, what="both runs to wait on a")
            first = dict(await conn.fetch(
                "SELECT id::text, checkpoint_revision_id FROM agent_runs "
                "WHERE id = ANY($1::uuid[])", [uuid.UUID(i) for i in ids.values()],
            ))  # fmt: skip
            async with start_nodes(1, database_url=database_url, root=tmp_path, env=env,
                                   prefix="b") as (b,):  # fmt: skip
                if stop == "kill -9":
                    await a.kill()
                else:
                    await a.terminate()
                async with b.http(owner.headers) as http:
                    events = {p: await events_of(http, runs[p], ids[p]) for p in runs}
                    drafts = {}
                    for prompt, app_id in apps.items():
                        state = await http.get(f"/admin/apps/{app_id}/builder/state")
                        assert state.status_code == 200, state.text
                        drafts[prompt] = state.json()["current_draft_revision"]
                owners = await conn.fetch(
                    "SELECT lease_owner, status FROM agent_runs WHERE id = ANY($1::uuid[])",
                    [uuid.UUID(i) for i in ids.values()],
                )  # fmt: skip
                log = b.log_tail(80)
    finally:
        await conn.close()

    for prompt in runs:
        final = events[prompt][-1]["data"]
        assert final["event"] == "run.completed", (prompt, final, log)
        assert final["payload"]["status"] == "completed", (prompt, final, log)
    assert all(row["status"] == "completed" for row in owners)

    # "more": its second checkpoint (made on b) holds both files and is the draft.
    more = events["more"]
    checkpoints = tool_outputs(more, CHECKPOINT)
    assert [kind for kind, _ in checkpoints] == ["tool.completed"] * 2, checkpoints
    second = checkpoints[-1][1]
    assert "merged_onto_revision_id" not in second  # the draft was its own first checkpoint
    files = drafts["more"]["files"]
    assert files.get("notes/one.md") == "from a\n", sorted(files)  # not reverted
    assert files.get("notes/two.md") == "from b\n", sorted(files)
    assert drafts["more"]["id"] == second["checkpoint_revision_id"]

    # "quiet": no tool on b, yet the run reports the revision it made on a.
    quiet = events["quiet"]
    kinds = [e["data"]["event"] for e in quiet]
    assert kinds[-3:] == ["revision.created", "checkpoint.created", "run.completed"], kinds
    revision = quiet[-1]["data"]["payload"]["result_revision_id"]
    assert revision == str(first[ids["quiet"]]) == drafts["quiet"]["id"]
    assert drafts["quiet"]["files"].get("notes/three.md") == "from a\n"
