"""Several real ``runwright serve`` processes on one Postgres (docs/design.md section 9,
issue 11 item 7): the runs table is the queue any node claims from, a dead node's runs are
settled or claimed by the others within seconds, a stalled owner is fenced after another
node took its run (no event, usage, checkpoint or revision of it lands), and tenants take
turns across nodes.

Node timings for these tests: heartbeat every 0.5 s, dead after 2 s of silence; outcomes
are awaited with deadlines (the takeover one is the product's 5 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from runtime.processes import free_port
from runtime.secret_box import new_key_text
from storage.database import Database
from tests.support.fixtures_openai import scripted_openai  # noqa: F401
from tests.support.nodes import NODE_SECRET, Node, node_env, operator_model
from tests.support.scripted_openai import (
    ScriptedOpenAI,
    ScriptedToolCall,
    text_reply,
    tool_call_reply,
)
from tests.support.seed import Seeded, Seeder

TAKEOVER_SECONDS = 5.0  # issue 11 item 3: settled or claimed within 5 s of a kill -9
HANG = [{"delta": "working"}, {"hang": True}]
LONG = [{"delta": "a", "delay_ms": 50} for _ in range(400)]  # 20 s of steady deltas


@pytest.fixture
def env() -> dict[str, str]:
    """What every node of these tests shares beyond tests.support.nodes.node_env."""
    return {
        "RUNWRIGHT_SECRETS_KEY": new_key_text(),
        "RUNWRIGHT_NODE_HEARTBEAT_SECONDS": "0.5",
        "RUNWRIGHT_NODE_DEAD_SECONDS": "2",
        "RUNWRIGHT_CLAIM_POLL_SECONDS": "0.2",
    }


@contextlib.asynccontextmanager
async def node(
    database_url: str, env: dict[str, str], node_id: str, root: Path
) -> AsyncIterator[Node]:
    """One node started now (others may start later in the same test); killed on exit."""
    data_dir = root / node_id
    data_dir.mkdir(parents=True, exist_ok=True)
    started = Node(node_id, free_port(), node_env(database_url, data_dir, node_id, env),
                   root / f"{node_id}.log")  # fmt: skip
    try:
        await started.start()
        yield started
    finally:
        await started.kill()


@pytest.fixture
async def conn(database_url: str) -> Any:
    connection = await asyncpg.connect(database_url)
    yield connection
    await connection.close()


async def _tenants(database_url: str, count: int) -> list[Seeded]:
    db = await Database.connect(database_url, min_size=1, max_size=2)
    try:
        seeder = Seeder(db, NODE_SECRET)
        return [await seeder.tenant_admin() for _ in range(count)]
    finally:
        await db.close()


async def _app(http: httpx.AsyncClient, slug: str) -> str:
    response = await http.post("/admin/apps", json={"name": slug, "slug": slug})
    assert response.status_code == 200, response.text
    return f"/admin/apps/{response.json()['id']}/coding-agent/runs"


async def _create(http: httpx.AsyncClient, runs: str, script: list[dict[str, Any]]) -> uuid.UUID:
    body = {"input": "x", "engine": "scripted", "script": script}
    response = await http.post(runs, json=body)
    assert response.status_code == 200, response.text
    return uuid.UUID(response.json()["run_id"])


async def _until(check: Callable[[], Awaitable[Any]], *, within: float, what: str) -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        value = await check()
        if value:
            return value
        assert time.monotonic() < deadline, f"not within {within} s: {what}"
        await asyncio.sleep(0.05)


async def _rows(conn: Any, ids: list[uuid.UUID]) -> dict[uuid.UUID, Any]:
    records = await conn.fetch(
        "SELECT id, status, lease_owner, error_message, started_at, claim_token "
        "FROM agent_runs WHERE id = ANY($1::uuid[])", ids,
    )  # fmt: skip
    return {r["id"]: r for r in records}


async def _events(conn: Any, run_id: uuid.UUID) -> list[Any]:
    return list(
        await conn.fetch(
            "SELECT seq, type, diagnostics::text AS diagnostics FROM run_events "
            "WHERE run_id = $1 ORDER BY seq",
            run_id,
        )  # fmt: skip
    )


def _log(node: Node) -> str:
    return node.log_path.read_text(errors="replace")


def _assert_log_whole(events: list[Any]) -> None:
    """seq contiguous from 1, exactly one terminal event, and it is the last."""
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    terminal = [e for e in events if e["type"] in ("run.completed", "run.failed")]
    assert len(terminal) == 1 and terminal[0] is events[-1]


@pytest.mark.parametrize("policy", ["fail", "requeue"])
async def test_kill_9_of_the_owner_settles_its_running_runs_and_frees_the_queue(
    env: dict[str, str], database_url: str, conn: Any, tmp_path: Path, policy: str
) -> None:
    """Node A runs two runs of a tenant at its cap (2, counted across nodes); two more wait
    queued. A is killed with SIGKILL. Within 5 s node B settles A's running runs by the
    restart policy: ``fail`` fails them, and the freed tenant slots go to the queued runs,
    which B claims; ``requeue`` queues them again and B claims them (oldest first), the
    cap still holding the others back until those are cancelled."""
    env = {**env, "RUNWRIGHT_MAX_LIVE_RUNS_PER_TENANT": "2", "RUNWRIGHT_RESTART_POLICY": policy}
    (owner,) = await _tenants(database_url, 1)
    async with node(database_url, env, "node-a", tmp_path) as a:
        async with a.http(owner.headers) as http:
            runs = await _app(http, "takeover")
            running = [await _create(http, runs, HANG) for _ in range(2)]
            queued = [await _create(http, runs, [{"delta": "later"}]) for _ in range(2)]

        async def two_running_on_a() -> bool:
            rows = await _rows(conn, running)
            return all(rows[r]["status"] == "running" and rows[r]["lease_owner"] == "node-a"
                       for r in running)  # fmt: skip

        await _until(two_running_on_a, within=60, what="A to run its two runs")
        rows = await _rows(conn, queued)
        assert all(rows[r]["status"] == "queued" for r in queued)  # the tenant cap holds

        async with (
            node(database_url, env, "node-b", tmp_path) as b,
            b.http(owner.headers) as http_b,
        ):
            rows = await _rows(conn, queued)  # B started: the cap still holds across nodes
            assert all(rows[r]["status"] == "queued" for r in queued)
            await a.kill()
            # fail: A's runs are failed and B claims the two queued ones. requeue: A's
            # runs are queued again (one by one: each still counts against the cap until
            # then), and B claims two of the four, the oldest first.

            async def taken_over() -> bool:
                rows = await _rows(conn, running + queued)
                if any(row["lease_owner"] == "node-a" for row in rows.values()):
                    return False
                on_b = [
                    r
                    for r, row in rows.items()
                    if row["lease_owner"] == "node-b" or row["status"] == "completed"
                ]
                if policy == "fail":
                    return all(rows[r]["status"] == "failed" for r in running) and set(
                        queued) <= set(on_b)  # fmt: skip
                return len(on_b) >= 2

            await _until(taken_over, within=TAKEOVER_SECONDS, what="B to take A's runs over")

            if policy == "requeue":
                rows = await _rows(conn, running + queued)
                assert sum(row["status"] == "running" for row in rows.values()) <= 2  # cap
                for run_id in running:  # A's runs: queued again with a note; cancel them
                    events = await _events(conn, run_id)
                    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
                    assert events[-1]["type"] not in ("run.completed", "run.failed")
                    cancel = await http_b.post(f"{runs}/{run_id}/cancel")
                    assert cancel.status_code == 200 and cancel.json()["status"] == "cancelled"

            async def queued_completed() -> bool:
                rows = await _rows(conn, queued)
                return all(rows[r]["status"] == "completed" for r in queued)

            await _until(queued_completed, within=60, what="the queued runs to complete on B")
            rows = await _rows(conn, running)
            for run_id in running:
                events = await _events(conn, run_id)
                _assert_log_whole(events)
                if policy == "fail":
                    assert rows[run_id]["status"] == "failed"
                    assert "RUN_INTERRUPTED" in events[-1]["diagnostics"]
                else:
                    assert rows[run_id]["status"] == "cancelled"
            for run_id in queued:
                _assert_log_whole(await _events(conn, run_id))


async def test_a_stalled_owner_is_fenced_after_takeover(
    env: dict[str, str], database_url: str, conn: Any, tmp_path: Path
) -> None:
    """Node A is SIGSTOPped mid-run; node B finds it dead and fails the run. After SIGCONT,
    A's engine goes on producing text, but nothing of it lands: the run's log ends with B's
    terminal event and its status stays failed; A logs that another node took the run,
    stops that engine, and keeps serving."""
    (owner,) = await _tenants(database_url, 1)
    async with node(database_url, env, "node-a", tmp_path) as a:
        async with a.http(owner.headers) as http:
            runs = await _app(http, "fenced")
            run_id = await _create(http, runs, LONG)

            async def streaming_on_a() -> bool:
                rows = await _rows(conn, [run_id])
                events = await _events(conn, run_id)
                return rows[run_id]["lease_owner"] == "node-a" and len(events) >= 5

            await _until(streaming_on_a, within=60, what="the run to stream on A")
            async with node(database_url, env, "node-b", tmp_path) as b:
                a.pause()
                try:

                    async def failed_by_b() -> bool:
                        rows = await _rows(conn, [run_id])
                        return rows[run_id]["status"] == "failed"

                    await _until(failed_by_b, within=30, what="B to settle the stalled run")
                    settled = await _events(conn, run_id)
                    _assert_log_whole(settled)
                finally:
                    a.resume()

                def fenced_line() -> bool:
                    return f"run {run_id}: another node took this run over" in _log(a)

                async def a_noticed() -> bool:
                    return fenced_line()

                await _until(a_noticed, within=30, what="A to notice the takeover")
                # A wrote nothing after the takeover, and the run stays as B left it.
                assert await _events(conn, run_id) == settled
                rows = await _rows(conn, [run_id])
                assert rows[run_id]["status"] == "failed"
                assert "RUN_INTERRUPTED" in settled[-1]["diagnostics"]
                # A keeps serving: healthy, and a new run on it completes.
                # (readiness may be red for a moment after SIGCONT: its probe result is stale)

                async def ready() -> bool:
                    return (await http.get("/readyz")).status_code == 200

                await _until(ready, within=30, what="A to be ready again")
                again = await _create(http, runs, [{"delta": "still here"}])

                async def completed() -> bool:
                    rows = await _rows(conn, [again])
                    return rows[again]["status"] == "completed"

                await _until(completed, within=60, what="a new run on A to complete")
                assert "Traceback" not in _log(a)
                assert b.running


async def _owner_writes(conn: Any, run_id: uuid.UUID, app_id: str) -> dict[str, Any]:
    """Everything a run's owner writes for it, beyond status and events: its usage rows
    and sums, its revisions and checkpoint, its session turns and webhook snapshots, and
    the app's revisions (a checkpoint tool's or auto-apply's draft)."""
    run = await conn.fetchrow(
        "SELECT status, claim_token, engine_outcome::text AS outcome, engine_run_ref, "
        "result_revision_id, checkpoint_revision_id, session_turns::text AS turns, "
        "usage_model_calls, usage_tool_calls, usage_model_ms, usage_tool_ms "
        "FROM agent_runs WHERE id = $1", run_id,
    )  # fmt: skip
    return {
        "run": dict(run),
        "usage_rows": await conn.fetchval(
            "SELECT count(*) FROM run_usage WHERE run_id = $1", run_id
        ),
        "webhooks": await conn.fetchval(
            "SELECT count(*) FROM webhook_deliveries WHERE run_id = $1", run_id
        ),
        "revisions": await conn.fetchval(
            "SELECT count(*) FROM app_revisions WHERE published_app_id = $1", uuid.UUID(app_id)
        ),
        "draft": await conn.fetchval(
            "SELECT current_draft_revision_id FROM published_apps WHERE id = $1",
            uuid.UUID(app_id),
        ),
    }


async def test_a_stalled_owner_lands_no_usage_checkpoint_or_revision_after_takeover(
    env: dict[str, str],
    database_url: str,
    conn: Any,
    tmp_path: Path,
    scripted_openai: ScriptedOpenAI,  # noqa: F811
) -> None:
    """A native run on A waits in its model call; A is SIGSTOPped and B fails the run.
    Then the model answers (a create_checkpoint call, with usage) and A is let go: its
    engine goes on, but none of its writes lands: no usage row or sum, no checkpoint
    revision, no new draft, no event; A logs the takeover and keeps serving."""
    (owner,) = await _tenants(database_url, 1)
    await operator_model(database_url, scripted_openai.base_url)
    gate = threading.Event()
    scripted_openai.push(
        dataclasses.replace(
            tool_call_reply(ScriptedToolCall("coding_agent_create_checkpoint", {}),
                            usage={"prompt_tokens": 7, "completion_tokens": 3,
                                   "total_tokens": 10}),
            gate=gate,
        ),
        tool_call_reply(ScriptedToolCall("coding_agent_create_checkpoint", {})),
        text_reply("done"),
    )  # fmt: skip
    async with node(database_url, env, "node-a", tmp_path) as a:
        async with a.http(owner.headers) as http:
            runs = await _app(http, "fenced-writes")
            app_id = runs.split("/")[3]
            response = await http.post(runs, json={"input": "checkpoint it"})
            assert response.status_code == 200, response.text
            run_id = uuid.UUID(response.json()["run_id"])
            await scripted_openai.wait_for_requests(1, within=60)  # waiting at the gate
            assert (await _rows(conn, [run_id]))[run_id]["lease_owner"] == "node-a"
            async with node(database_url, env, "node-b", tmp_path) as b:
                a.pause()
                try:

                    async def failed_by_b() -> bool:
                        return (await _rows(conn, [run_id]))[run_id]["status"] == "failed"

                    await _until(failed_by_b, within=30, what="B to settle the stalled run")
                    settled = await _events(conn, run_id)
                    _assert_log_whole(settled)
                    before = await _owner_writes(conn, run_id, app_id)
                    gate.set()  # the answer waits in A's socket
                finally:
                    a.resume()

                async def a_noticed() -> bool:
                    return f"run {run_id}: another node took this run over" in _log(a)

                await _until(a_noticed, within=30, what="A to notice the takeover")
                # Whatever A's engine was still doing settles before A's next run ends.
                again = await _create(http, runs, [{"delta": "still here"}])

                async def completed() -> bool:
                    return (await _rows(conn, [again]))[again]["status"] == "completed"

                await _until(completed, within=60, what="a new run on A to complete")
                assert await _owner_writes(conn, run_id, app_id) == before
                assert before["usage_rows"] == 0 and before["revisions"] == 1
                assert await _events(conn, run_id) == settled
                assert "RUN_INTERRUPTED" in settled[-1]["diagnostics"]
                assert "Traceback" not in _log(a)
                assert b.running


async def test_a_run_queued_on_a_full_node_is_claimed_by_another(
    env: dict[str, str], database_url: str, conn: Any, tmp_path: Path
) -> None:
    """A has one slot, busy. A run created on A waits queued; a node that starts picks it
    up at once, and a run created on A while B is up is claimed by B, woken by rw_work (the
    polls are set to a minute, so only the notification can wake it in time)."""
    env = {
        **env,
        "RUNWRIGHT_MAX_LIVE_RUNS": "1",
        "RUNWRIGHT_CLAIM_POLL_SECONDS": "60",
        "RUNWRIGHT_NOTIFY_POLL_SECONDS": "60",
    }
    (owner,) = await _tenants(database_url, 1)
    async with node(database_url, env, "node-a", tmp_path) as a, a.http(owner.headers) as http:
        runs = await _app(http, "full")
        busy = await _create(http, runs, HANG)

        async def busy_on_a() -> bool:
            return (await _rows(conn, [busy]))[busy]["lease_owner"] == "node-a"

        await _until(busy_on_a, within=60, what="A to take its one run")
        first = await _create(http, runs, [{"delta": "one"}])
        assert (await _rows(conn, [first]))[first]["status"] == "queued"
        async with node(database_url, env, "node-b", tmp_path):

            async def done_by_b(run_id: uuid.UUID) -> bool:
                row = (await _rows(conn, [run_id]))[run_id]
                return row["status"] == "completed"

            await _until(lambda: done_by_b(first), within=60, what="B to run the queued run")
            second = await _create(http, runs, [{"delta": "two"}])
            await _until(lambda: done_by_b(second), within=30, what="B, woken by rw_work")
            for run_id in (first, second):
                events = await _events(conn, run_id)
                _assert_log_whole(events)
            text = (await http.get(f"{runs}/{second}")).json()
            assert text["status"] == "completed"
        assert (await _rows(conn, [busy]))[busy]["status"] == "running"


async def test_tenants_take_turns_across_nodes(
    env: dict[str, str], database_url: str, conn: Any, tmp_path: Path
) -> None:
    """Two nodes with one slot each. Tenant X floods the queue; tenant Y's run, created
    later, is claimed at the next free slot, ahead of X's older queued runs."""
    env = {**env, "RUNWRIGHT_MAX_LIVE_RUNS": "1"}
    x, y = await _tenants(database_url, 2)
    step = [{"delta": "x"}, {"sleep_ms": 400}]
    async with (
        node(database_url, env, "node-a", tmp_path) as a,
        node(database_url, env, "node-b", tmp_path) as b,
    ):
        async with a.http(x.headers) as http_x, b.http(y.headers) as http_y:
            x_runs_url = await _app(http_x, "flood")
            y_runs_url = await _app(http_y, "turn")
            flood = [await _create(http_x, x_runs_url, step) for _ in range(10)]
            y_run = await _create(http_y, y_runs_url, step)
            rows = await _rows(conn, flood)
            waiting = [r for r in flood if rows[r]["status"] == "queued"]
            assert len(waiting) >= 4, "the flood should still be queued"

            async def all_done() -> bool:
                rows = await _rows(conn, [*flood, y_run])
                return all(row["status"] == "completed" for row in rows.values())

            await _until(all_done, within=120, what="every run to complete")
    rows = await _rows(conn, [*flood, y_run])
    y_start = rows[y_run]["started_at"]
    overtaken = [r for r in waiting if rows[r]["started_at"] > y_start]
    # At most the two runs claimed as Y's run was being created start before it.
    assert len(overtaken) >= len(waiting) - 2, (len(overtaken), len(waiting))
