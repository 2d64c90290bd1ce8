"""Any node accepts cancel and resume (issue 11 items 1, 2 and 7): cancel sent to a node
that does not execute the run is relayed to the one that does, which answers once its
engine stopped (the response carries the final status); an owner that does not answer
makes the cancel fail closed (503 ``RUN_OWNER_UNRESPONSIVE``) and the run is not
cancelled later; resume works through any node."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from tests.support.faults import event_log, wait_settled
from tests.support.nodes import (
    create_app,
    create_scripted_run,
    seed_owner,
    start_nodes,
    wait_for_owner,
)
from tests.support.sse_client import SseStream

RELAY_TIMEOUT = 3.0


def _runs(app_id: str, suffix: str = "") -> str:
    return f"/admin/apps/{app_id}/coding-agent/runs{suffix}"


async def _status(http: httpx.AsyncClient, app_id: str, run_id: str) -> str:
    response = await http.get(_runs(app_id, f"/{run_id}"))
    assert response.status_code == 200, response.text
    return str(response.json()["status"])


async def test_cancel_on_any_node_stops_the_run_where_it_executes(
    database_url: str, tmp_path: Path
) -> None:
    owner = await seed_owner(database_url)
    async with start_nodes(3, database_url=database_url, root=tmp_path) as nodes:
        async with nodes[0].http(owner.headers) as http:
            app_id = await create_app(http)
            run_id = await create_scripted_run(http, app_id, [{"delta": "working"},
                                                              {"hang": True}])  # fmt: skip
        runner = await wait_for_owner(database_url, run_id, nodes)
        sender, watcher = [node for node in nodes if node is not runner]
        async with sender.http(owner.headers) as on_sender, watcher.http(owner.headers) as on_w:
            async with SseStream(on_w, _runs(app_id, f"/{run_id}/stream")) as stream:
                await stream.until(lambda ev: any("working" in e["raw"] for e in ev))
                response = await on_sender.post(_runs(app_id, f"/{run_id}/cancel"))
                assert response.status_code == 200, response.text
                # Verified: the answer comes once the engine stopped, with the final status.
                assert response.json()["status"] == "cancelled"
                events = await stream.until_ended(within=120.0)
            assert events[-1]["data"]["event"] == "run.failed"
            assert events[-1]["data"]["payload"]["status"] == "cancelled"
            # Cancel is idempotent on every node, the runner included.
            async with runner.http(owner.headers) as on_runner:
                again = await on_runner.post(_runs(app_id, f"/{run_id}/cancel"))
                assert again.status_code == 200 and again.json()["status"] == "cancelled"
            assert (await on_sender.post(_runs(app_id, f"/{run_id}/cancel"))).json()[
                "status"
            ] == "cancelled"


async def test_cancel_fails_closed_while_the_owner_is_stopped(
    database_url: str, tmp_path: Path
) -> None:
    """SIGSTOP the executing node, cancel through another: 503 within the relay timeout,
    and after SIGCONT the run goes on to complete (the expired request is dropped)."""
    owner = await seed_owner(database_url)
    env = {
        "RUNWRIGHT_COMMAND_RELAY_TIMEOUT_SECONDS": str(RELAY_TIMEOUT),
        # Should a takeover happen while the owner is stopped, the run runs again.
        "RUNWRIGHT_RESTART_POLICY": "requeue",
    }
    async with start_nodes(2, database_url=database_url, root=tmp_path, env=env) as nodes:
        async with nodes[0].http(owner.headers) as http:
            app_id = await create_app(http)
            script: list[dict[str, Any]] = [{"delta": "one"}, {"sleep_ms": 6000},
                                            {"delta": "two"}]  # fmt: skip
            run_id = await create_scripted_run(http, app_id, script)
        runner = await wait_for_owner(database_url, run_id, nodes)
        sender = nodes[1] if runner is nodes[0] else nodes[0]
        async with sender.http(owner.headers) as on_sender:
            runner.pause()
            try:
                response = await on_sender.post(_runs(app_id, f"/{run_id}/cancel"))
            finally:
                runner.resume()
            assert response.status_code == 503, response.text
            assert response.json()["detail"]["code"] == "RUN_OWNER_UNRESPONSIVE"
            assert int(response.headers["Retry-After"]) > 0
        settled = await wait_settled(database_url, [run_id], within=120.0)
        assert settled[run_id] == "completed", runner.log_tail()
        stored = await event_log(database_url, run_id)
        assert "two" in "".join(
            e["payload"].get("content", "") for e in stored if e["type"] == "assistant.delta"
        )


async def test_resume_through_another_node(database_url: str, tmp_path: Path) -> None:
    owner = await seed_owner(database_url)
    async with start_nodes(2, database_url=database_url, root=tmp_path) as nodes:
        a, b = nodes
        async with a.http(owner.headers) as on_a, b.http(owner.headers) as on_b:
            app_id = await create_app(on_a)
            run_id = await create_scripted_run(
                on_a, app_id, [{"delta": "asking"}, {"pause": {"question": "go?"}},
                               {"delta": "resumed"}],
            )  # fmt: skip
            await wait_settled(database_url, [run_id], within=120.0, statuses={"paused"})
            paused_at = (await event_log(database_url, run_id))[-1]["seq"]
            response = await on_b.post(
                _runs(app_id, f"/{run_id}/resume"), json={"payload": {"answer": "yes"}}
            )
            assert response.status_code == 200, response.text
            assert response.json()["status"] in {"queued", "running", "completed"}
            # A stream on the other node from the pause on sees the resumed turn to its end.
            url = _runs(app_id, f"/{run_id}/stream?after={paused_at}")
            async with SseStream(on_a, url) as stream:
                events = await stream.until_ended(within=120.0)
            assert events[-1]["data"]["event"] == "run.completed"
            assert [e["id"] for e in events] == list(range(paused_at + 1, events[-1]["id"] + 1))
            assert any(e["data"]["payload"].get("resumed_with") == {"answer": "yes"}
                       for e in events)  # fmt: skip
            assert await _status(on_a, app_id, run_id) == "completed"


async def test_cancel_of_a_run_whose_node_died_answers_then_settles(
    database_url: str, tmp_path: Path
) -> None:
    """kill -9 of the executing node: cancel elsewhere fails closed (503) until the run is
    taken over (its lease lapsed: settled by the restart policy), then answers 200."""
    owner = await seed_owner(database_url)
    env = {"RUNWRIGHT_COMMAND_RELAY_TIMEOUT_SECONDS": str(RELAY_TIMEOUT),
           "RUNWRIGHT_LEASE_SECONDS": "3"}  # fmt: skip
    async with start_nodes(2, database_url=database_url, root=tmp_path, env=env) as nodes:
        async with nodes[0].http(owner.headers) as http:
            app_id = await create_app(http)
            run_id = await create_scripted_run(http, app_id, [{"hang": True}])
        runner = await wait_for_owner(database_url, run_id, nodes)
        survivor = nodes[1] if runner is nodes[0] else nodes[0]
        await runner.kill()
        async with survivor.http(owner.headers) as http:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 120.0
            while True:
                response = await http.post(_runs(app_id, f"/{run_id}/cancel"))
                if response.status_code == 200:
                    break
                assert response.status_code == 503, response.text
                assert response.json()["detail"]["code"] == "RUN_OWNER_UNRESPONSIVE"
                assert loop.time() < deadline, survivor.log_tail()
            assert response.json()["status"] in {"failed", "cancelled"}
