"""A real ``runwright serve`` process killed with SIGKILL mid-run: at the next start its
run is reconciled to ``failed`` with a diagnostic, never left ``running`` (docs/design.md 8.12)."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import httpx
import pytest

from storage.database import Database
from tests.support.runs import parse_sse
from tests.support.seed import Seeder
from tests.support.serve_process import free_port, serve

SECRET = "e2e-secret-0123456789abcdef-0123456789abcdef"


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "RUNWRIGHT_DATA_DIR": str(tmp_path / "data"),
        "RUNWRIGHT_JWT_SECRET": SECRET,
        "RUNWRIGHT_SCRIPTED_ENGINE_ENABLED": "1",
        "RUNWRIGHT_LOCAL_MODEL_AUTOSTART": "0",
    }


@pytest.mark.parametrize("node_id", [None, "node-under-test"], ids=["default-node-id", "fixed"])
async def test_a_killed_process_leaves_no_run_running(
    env: dict[str, str], database_url: str, node_id: str | None
):
    """With the default ``<host>:<pid>`` node id the dead pid is recognised; with a fixed
    one the restarted process knows the runs were its own."""
    if node_id is not None:
        env = {**env, "RUNWRIGHT_NODE_ID": node_id}
    db = await Database.connect(database_url, min_size=1, max_size=2)
    try:
        owner = await Seeder(db, SECRET).tenant_admin()
    finally:
        await db.close()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    async with serve(env, port) as proc:
        async with httpx.AsyncClient(base_url=base, headers=owner.headers) as http:
            app = (await http.post("/admin/apps", json={"name": "a", "slug": "kill-me"})).json()
            runs = f"/admin/apps/{app['id']}/coding-agent/runs"
            run = (await http.post(runs, json={"input": "x", "engine": "scripted",
                                               "script": [{"hang": True}]})).json()  # fmt: skip
            for _ in range(100):
                if (await http.get(f"{runs}/{run['run_id']}")).json()["status"] == "running":
                    break
                await asyncio.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)  # no shutdown hooks run
        await asyncio.wait_for(proc.wait(), 10)

    async with serve(env, port):
        async with httpx.AsyncClient(base_url=base, headers=owner.headers) as http:
            final = (await http.get(f"{runs}/{run['run_id']}")).json()
            for _ in range(100):
                if final["status"] != "running":
                    break
                await asyncio.sleep(0.05)
                final = (await http.get(f"{runs}/{run['run_id']}")).json()
            assert final["status"] == "failed"
            assert "restarted" in final["error"]
            stream = await http.get(f"{runs}/{run['run_id']}/stream", timeout=20)
            events = parse_sse(stream.text)
            assert events[-1]["data"]["event"] == "run.failed"
            assert events[-1]["data"]["diagnostics"][0]["code"] == "RUN_INTERRUPTED"
