"""Any node serves any stream (issue 11 items 1, 2 and 7): a stream opened on a node that
does not execute the run gets its events live, woken by ``rw_events``, with no gap, no
duplicate, and the terminal event last; the node's listener reconnects after its
connection is terminated and streams keep flowing."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import asyncpg

from tests.support.faults import event_log
from tests.support.nodes import (
    Node,
    create_app,
    create_scripted_run,
    seed_owner,
    start_nodes,
    wait_for_owner,
)
from tests.support.sse_client import SseStream

CHUNKS = 40
TERMINAL = {"run.completed", "run.failed"}


def _script(chunks: int = CHUNKS, delay_ms: int = 50) -> list[dict[str, Any]]:
    # A first pause lets the test open its streams before most events exist.
    steps: list[dict[str, Any]] = [{"sleep_ms": 3000}]
    steps += [{"delta": f"<{i}>", "delay_ms": delay_ms} for i in range(chunks)]
    return steps


def _stream_url(app_id: str, run_id: str, after: int | None = None) -> str:
    url = f"/admin/apps/{app_id}/coding-agent/runs/{run_id}/stream"
    return url if after is None else f"{url}?after={after}"


def _assert_whole(events: list[dict[str, Any]], stored: list[dict[str, Any]], after: int) -> None:
    """The stream carried exactly the stored events after ``after``, in order, ending
    with the terminal one."""
    seqs = [e["id"] for e in events]
    assert seqs == [e["seq"] for e in stored if e["seq"] > after], seqs
    assert events[-1]["data"]["event"] in TERMINAL
    assert sum(e["data"]["event"] in TERMINAL for e in events) == 1


async def test_streams_on_other_nodes_get_every_event_live(
    database_url: str, tmp_path: Path
) -> None:
    owner = await seed_owner(database_url)
    async with start_nodes(3, database_url=database_url, root=tmp_path) as nodes:
        async with nodes[0].http(owner.headers) as http:
            app_id = await create_app(http)
            run_id = await create_scripted_run(http, app_id, _script())
        runner = await wait_for_owner(database_url, run_id, nodes)
        others = [node for node in nodes if node is not runner]
        clients = [node.http(owner.headers) for node in others]
        try:
            streams = [SseStream(c, _stream_url(app_id, run_id)) for c in clients]
            for stream in streams:
                await stream.__aenter__()
            # A third stream joins mid-run with a cursor (a reconnecting client).
            seen = await streams[0].until(lambda ev: any("<5>" in e["raw"] for e in ev))
            cursor = next(int(e["id"]) for e in seen if "<5>" in e["raw"])
            late = SseStream(clients[1], _stream_url(app_id, run_id, after=cursor))
            await late.__aenter__()
            for stream in [*streams, late]:
                await stream.until_ended(within=120.0)
            stored = await event_log(database_url, run_id)
            assert stored[-1]["type"] == "run.completed"
            for stream in streams:
                assert stream.status == 200
                _assert_whole(stream.events, stored, 0)
            _assert_whole(late.events, stored, cursor)
        finally:
            for stream in [*streams, late]:
                await stream.__aexit__(None, None, None)
            for client in clients:
                await client.aclose()


async def _listener_pid(database_url: str, node: Node) -> int | None:
    conn = await asyncpg.connect(database_url, timeout=30)
    try:
        value = await conn.fetchval(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1",
            f"runwright-listener {node.node_id}",
        )
    finally:
        await conn.close()
    return None if value is None else int(value)


async def _terminate(database_url: str, pid: int) -> None:
    conn = await asyncpg.connect(database_url, timeout=30)
    try:
        assert await conn.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await conn.close()


async def _new_listener(database_url: str, node: Node, old: int, *, within: float) -> int:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        pid = await _listener_pid(database_url, node)
        if pid is not None and pid != old:
            return pid
        assert loop.time() < deadline, f"no new listener connection\n{node.log_tail()}"
        await asyncio.sleep(0.05)


async def test_listener_reconnects_after_its_connection_is_terminated(
    database_url: str, tmp_path: Path
) -> None:
    """The slow poll is set to a minute here, so events after the reconnect can only
    arrive through notifications on the new connection: it LISTENs again."""
    owner = await seed_owner(database_url)
    env = {"RUNWRIGHT_NOTIFY_POLL_SECONDS": "60"}
    async with start_nodes(2, database_url=database_url, root=tmp_path, env=env) as nodes:
        async with nodes[0].http(owner.headers) as http:
            app_id = await create_app(http)
            run_id = await create_scripted_run(
                http, app_id, [{"sleep_ms": 1500}, {"delta": "before"}, {"sleep_ms": 5000},
                               *_script(chunks=10, delay_ms=100)[1:]],
            )  # fmt: skip
        runner = await wait_for_owner(database_url, run_id, nodes)
        watcher = nodes[1] if runner is nodes[0] else nodes[0]
        async with watcher.http(owner.headers) as http:
            async with SseStream(http, _stream_url(app_id, run_id)) as stream:
                await stream.until(lambda ev: any("before" in e["raw"] for e in ev))
                old = await _listener_pid(database_url, watcher)
                assert old is not None
                await _terminate(database_url, old)
                await _new_listener(database_url, watcher, old, within=60.0)
                events = await stream.until_ended(within=120.0)
            stored = await event_log(database_url, run_id)
            _assert_whole(events, stored, 0)
            ready = await http.get("/readyz")
            assert ready.status_code == 200, ready.text
