"""SIGTERM with 20 live runs (issue 10, part 2 items 4 and 7): the process lets the runs
that can finish within the grace period finish, hands the rest back durably (lease
released, queued again) and exits; nothing is left running under a live lease. The next
process runs the handed-back runs to the end: every log is contiguous with one terminal
event, and each run's text is the whole reply exactly once (the rerun does not log again what
the interrupted attempt streamed)."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import asyncpg
import httpx

from runtime.processes import free_port
from storage.database import Database
from tests.support.cluster import DATABASE, Cluster
from tests.support.faults import (
    assert_log_intact,
    assistant_text,
    event_log,
    final_log,
    wait_settled,
)
from tests.support.live_server import server_process
from tests.support.seed import Seeder

SECRET = "fault-secret-0123456789abcdef-0123456789abcdef"
SHORT, LONG = 10, 10
GRACE = 6.0
WITHIN = 180.0


def _env(dsn: str, data_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": dsn,
        "RUNWRIGHT_DATA_DIR": str(data_dir),
        "RUNWRIGHT_JWT_SECRET": SECRET,
        "RUNWRIGHT_SCRIPTED_ENGINE_ENABLED": "1",
        "RUNWRIGHT_LOCAL_MODEL_AUTOSTART": "0",
        "RUNWRIGHT_SHUTDOWN_GRACE_SECONDS": str(GRACE),
    }


def _script(chunks: int, delay_ms: int) -> list[dict[str, object]]:
    return [{"delta": f"c{i:03d} ", "delay_ms": delay_ms} for i in range(chunks)]


async def test_sigterm_drains_live_runs_and_hands_back_the_rest(
    cluster: Cluster, tmp_path: Path
) -> None:
    dsn = cluster.dsn(DATABASE)
    db = await Database.connect(dsn, min_size=1, max_size=1)
    try:
        owner = await Seeder(db, SECRET).tenant_admin()
    finally:
        await db.close()
    env = _env(dsn, tmp_path / "data")
    port = free_port()
    short, long = _script(10, 100), _script(600, 100)  # ~1 s and ~60 s
    texts: dict[str, str] = {}
    async with server_process(env, port) as proc:
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base, headers=owner.headers, timeout=60) as http:
            for n in range(SHORT + LONG):
                script = short if n < SHORT else long
                app = (await http.post("/admin/apps", json={"name": "t", "slug": f"t{n}"})).json()
                created = await http.post(
                    f"/admin/apps/{app['id']}/coding-agent/runs",
                    json={"input": "x", "engine": "scripted", "script": script},
                )
                assert created.status_code == 200, created.text
                texts[created.json()["run_id"]] = "".join(s["delta"] for s in script)  # type: ignore[misc]
            deadline = asyncio.get_running_loop().time() + WITHIN
            for run_id in texts:
                while not assistant_text(await event_log(dsn, run_id)):
                    assert asyncio.get_running_loop().time() < deadline
                    await asyncio.sleep(0.05)
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), GRACE * 4 + 30)
    conn = await asyncpg.connect(dsn)
    try:
        left = await conn.fetch(
            "SELECT id, status, lease_owner FROM agent_runs WHERE status = 'running'"
        )
    finally:
        await conn.close()
    assert left == [], "runs left running after a graceful stop"

    async with server_process(env, port):  # the logs are read while it still runs
        statuses = await wait_settled(dsn, list(texts), within=WITHIN)
        assert set(statuses.values()) == {"completed"}, statuses
        for run_id, full in texts.items():
            events = await final_log(dsn, run_id)
            assert_log_intact(events)
            text = assistant_text(events)
            assert text == full, text
