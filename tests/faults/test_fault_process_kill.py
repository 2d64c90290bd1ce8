"""``runwright serve`` killed with SIGKILL while five runs stream (issue 10, part 2 item 7):
once a process starts again on the same database, every run is settled within a bound by
the restart policy (``fail``: failed with ``RUN_INTERRUPTED``; ``requeue``: run again to
the end), its seq contiguous from 1 with exactly one terminal event, and its text what the
engine produced: a prefix of the reply from the killed attempt (``fail``), or the whole reply
exactly once (``requeue``: the rerun does not log again what the killed attempt streamed)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import httpx
import pytest

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
from tests.support.live_server import kill, server_process
from tests.support.seed import Seeder

SECRET = "fault-secret-0123456789abcdef-0123456789abcdef"
RUNS = 5
CHUNKS = [f"part-{i:02d} " for i in range(40)]
WITHIN = 180.0


def _env(dsn: str, data_dir: Path, policy: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": dsn,
        "RUNWRIGHT_DATA_DIR": str(data_dir),
        "RUNWRIGHT_JWT_SECRET": SECRET,
        "RUNWRIGHT_SCRIPTED_ENGINE_ENABLED": "1",
        "RUNWRIGHT_LOCAL_MODEL_AUTOSTART": "0",
        "RUNWRIGHT_RESTART_POLICY": policy,
    }


async def _until_streaming(dsn: str, run_ids: list[str]) -> None:
    deadline = asyncio.get_running_loop().time() + WITHIN
    for run_id in run_ids:
        while not assistant_text(await event_log(dsn, run_id)):
            assert asyncio.get_running_loop().time() < deadline, f"{run_id} never streamed"
            await asyncio.sleep(0.05)


@pytest.mark.parametrize("policy", ["fail", "requeue"])
async def test_a_killed_process_leaves_every_run_settled_and_its_log_intact(
    cluster: Cluster, tmp_path: Path, policy: str
) -> None:
    dsn = cluster.dsn(DATABASE)
    db = await Database.connect(dsn, min_size=1, max_size=1)
    try:
        owner = await Seeder(db, SECRET).tenant_admin()
    finally:
        await db.close()
    env = _env(dsn, tmp_path / "data", policy)
    port = free_port()
    script = [{"delta": chunk, "delay_ms": 50} for chunk in CHUNKS]
    run_ids: list[str] = []
    async with server_process(env, port) as proc:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}",
                                     headers=owner.headers, timeout=60) as http:  # fmt: skip
            for n in range(RUNS):
                app = (await http.post("/admin/apps", json={"name": "k", "slug": f"k{n}"})).json()
                created = await http.post(
                    f"/admin/apps/{app['id']}/coding-agent/runs",
                    json={"input": "x", "engine": "scripted", "script": script},
                )
                assert created.status_code == 200, created.text
                run_ids.append(created.json()["run_id"])
        await _until_streaming(dsn, run_ids)
        await kill(proc)  # SIGKILL: no shutdown hook runs

    full = "".join(CHUNKS)
    async with server_process(env, port):  # the logs are read while it still runs
        wanted = {"failed"} if policy == "fail" else {"completed"}
        statuses = await wait_settled(dsn, run_ids, within=WITHIN)
        assert set(statuses.values()) == wanted, statuses
        for run_id in run_ids:
            events = await final_log(dsn, run_id)
            assert_log_intact(events)
            text = assistant_text(events)
            if policy == "fail":
                assert events[-1]["payload"]["error"], events[-1]
                assert full.startswith(text) and text != full, text
            else:
                assert text == full, text
                restarts = [e for e in events if e["type"] == "plan.updated"
                            and "requeued" in e["payload"].get("summary", "")]  # fmt: skip
                assert restarts, "the run was not requeued by the restart"
