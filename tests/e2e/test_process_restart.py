"""A real ``runwright serve`` process killed with SIGKILL mid-run: at the next start its
run is reconciled to ``failed`` with a diagnostic, never left ``running`` (DESIGN.md 8.12)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from storage.database import Database
from tests.support.runs import parse_sse
from tests.support.seed import Seeder

SECRET = "e2e-secret-0123456789abcdef-0123456789abcdef"
ROOT = Path(__file__).resolve().parents[2]


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def serve(env: dict[str, str], port: int) -> AsyncIterator[asyncio.subprocess.Process]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "web.cli", "serve", "--port", str(port),
        env=env, cwd=ROOT, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            for _ in range(200):
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get("/healthz")).status_code == 200:
                        break
                assert proc.returncode is None, "the server exited during start-up"
                await asyncio.sleep(0.1)
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await asyncio.wait_for(proc.wait(), 10)


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
    port = _port()
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
