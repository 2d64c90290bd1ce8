"""The multi-node harness itself (tests/support/nodes.py): two real ``runwright serve``
processes on one Postgres, each with its own node id, and the signals a test sends them."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.support.nodes import (
    create_app,
    create_scripted_run,
    seed_owner,
    start_nodes,
    wait_for_owner,
)


async def _answers(http: httpx.AsyncClient) -> bool:
    try:
        return (await http.get("/livez", timeout=2.0)).status_code == 200
    except httpx.TimeoutException:
        return False


async def test_two_nodes_share_one_database_and_take_signals(
    database_url: str, tmp_path: Path
) -> None:
    owner = await seed_owner(database_url)
    async with start_nodes(2, database_url=database_url, root=tmp_path) as nodes:
        a, b = nodes
        assert a.node_id != b.node_id and a.port != b.port
        async with a.http(owner.headers) as on_a:
            app_id = await create_app(on_a)
            run_id = await create_scripted_run(on_a, app_id, [{"hang": True}])
        # One node executes the run under its node id; the other reads it from the same
        # database.
        busy = await wait_for_owner(database_url, run_id, nodes)
        idle = b if busy is a else a
        async with busy.http(owner.headers) as on_busy, idle.http(owner.headers) as on_idle:
            seen = await on_idle.get(f"/admin/apps/{app_id}/coding-agent/runs/{run_id}")
            assert seen.status_code == 200 and seen.json()["status"] == "running"

            busy.pause()  # a stopped process keeps its socket but answers nothing
            assert not await _answers(on_busy)
            assert await _answers(on_idle)
            busy.resume()
            assert await _answers(on_busy)

            await busy.kill()
            assert not busy.running and await _answers(on_idle)
        assert await idle.terminate() == 0
        await busy.start()  # a node starts again under its id and port
        async with busy.http() as again:
            assert (await again.get("/readyz")).status_code == 200
