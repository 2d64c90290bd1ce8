"""Graceful shutdown on SIGTERM (issue 10, Part 2 item 4), with real ``runwright serve``
processes on loopback and the session's real Postgres.

A server with live runs gets SIGTERM: it stops taking work (the runs service reports
draining), a run that ends within the grace period completes, the runs still executing
after it are handed back (their engine stopped, ``queued`` again with the lease released
and a ``plan.updated`` diagnostic ``RUN_REQUEUED``), an open stream ends without a terminal
event (the client reconnects by id), and the process exits. Nothing is left ``running``;
the next server picks the handed-back runs up at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from storage.database import Database
from tests.support.runs import parse_sse
from tests.support.seed import Seeder
from tests.support.serve_process import serve_env, until

SECRET = "drain-secret-0123456789abcdef-0123456789abcdef"
ROOT = Path(__file__).resolve().parents[2]
GRACE = 3.0
HANGING = 3


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def serve(env: dict[str, str], port: int) -> AsyncIterator[asyncio.subprocess.Process]:
    """A ``runwright serve`` process, ready; SIGKILLed on exit if it is still alive."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "web.cli", "serve", "--port", str(port),
        env=env, cwd=ROOT, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            deadline = time.monotonic() + 60
            while True:
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get("/healthz")).status_code == 200:
                        break
                assert proc.returncode is None, "the server exited during start-up"
                assert time.monotonic() < deadline, "the server did not start"
                await asyncio.sleep(0.1)
        yield proc
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await asyncio.wait_for(proc.wait(), 30)


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return serve_env(database_url, tmp_path / "data", SECRET,
                     RUNWRIGHT_SHUTDOWN_GRACE_SECONDS=str(GRACE))  # fmt: skip


async def test_sigterm_drains_live_runs_and_hands_the_rest_back(
    env: dict[str, str], database_url: str
) -> None:
    db = await Database.connect(database_url, min_size=1, max_size=2)
    try:
        owner = await Seeder(db, SECRET).tenant_admin()
    finally:
        await db.close()
    port = _port()
    async with serve(env, port) as proc:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", headers=owner.headers, timeout=30
        ) as http:
            app = (await http.post("/admin/apps", json={"name": "d", "slug": "drain"})).json()
            runs = f"/admin/apps/{app['id']}/coding-agent/runs"

            async def create(script: list[dict[str, Any]]) -> str:
                body = {"input": "x", "engine": "scripted", "script": script}
                response = await http.post(runs, json=body)
                assert response.status_code == 200, response.text
                return str(response.json()["run_id"])

            # ends within the grace period: completes; the others hang until handed back
            quick = await create([{"delta": "almost done"}, {"sleep_ms": 1000},
                                  {"delta": " - done"}])  # fmt: skip
            hanging = [await create([{"delta": "working"}, {"hang": True}])
                       for _ in range(HANGING)]  # fmt: skip

            async def all_running() -> bool:
                rows = [(await http.get(f"{runs}/{r}")).json() for r in [quick, *hanging]]
                return all(row["status"] == "running" for row in rows)

            await until(all_running, within=60, what="every run to run")

            stream_text: list[str] = []

            async def watch() -> None:
                async with http.stream("GET", f"{runs}/{hanging[0]}/stream") as response:
                    async for chunk in response.aiter_text():
                        stream_text.append(chunk)

            watcher = asyncio.create_task(watch())

            async def stream_open() -> bool:
                return "working" in "".join(stream_text)

            await until(stream_open, within=30, what="the stream to deliver events")

            started = time.monotonic()
            os.killpg(proc.pid, signal.SIGTERM)
            # the stream ends (reconnectable: no terminal event), the process exits
            await asyncio.wait_for(watcher, GRACE + 60)
            await asyncio.wait_for(proc.wait(), GRACE + 60)
            elapsed = time.monotonic() - started
        assert proc.returncode == 0
        assert elapsed >= 1.0  # the live runs got their grace period

    events = [e["data"] for e in parse_sse("".join(stream_text))]
    assert events and not any(e["event"] in ("run.completed", "run.failed") for e in events)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))

    conn = await asyncpg.connect(database_url)
    try:
        rows = {
            str(r["id"]): r
            for r in await conn.fetch(
                "SELECT id, status, lease_owner, lease_expires_at FROM agent_runs"
            )
        }
        assert rows[quick]["status"] == "completed"
        for run_id in hanging:
            assert rows[run_id]["status"] == "queued"
            assert rows[run_id]["lease_owner"] is None and rows[run_id]["lease_expires_at"] is None
            notes = await conn.fetch(
                "SELECT seq, type, diagnostics::text AS d FROM run_events WHERE run_id = $1 "
                "ORDER BY seq", uuid.UUID(run_id),
            )  # fmt: skip
            assert [n["seq"] for n in notes] == list(range(1, len(notes) + 1))
            assert notes[-1]["type"] == "plan.updated" and "RUN_REQUEUED" in notes[-1]["d"]
            assert not any(n["type"] in ("run.completed", "run.failed") for n in notes)
        assert not [r for r in rows.values() if r["status"] == "running"]
    finally:
        await conn.close()

    # the next server takes the handed-back runs at once
    async with serve(env, port):
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", headers=owner.headers, timeout=30
        ) as http:

            async def resumed() -> bool:
                rows = [(await http.get(f"{runs}/{r}")).json() for r in hanging]
                return all(row["status"] == "running" for row in rows)

            await until(resumed, within=60, what="the handed-back runs to run again")
            quick_row = (await http.get(f"{runs}/{quick}")).json()
            assert quick_row["status"] == "completed"
