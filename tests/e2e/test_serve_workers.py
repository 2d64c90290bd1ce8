"""``runwright serve --workers 2`` (issue 11 item 5): one port, two real worker processes
under a supervising parent, on the session's real Postgres.

Which worker takes a connection is the kernel's choice; the tests pick it by stopping the
other worker (SIGSTOP) while they open fresh connections: a stopped worker accepts nothing,
so the one left serves every new connection on the shared socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from storage.database import Database
from tests.support.seed import Seeded, Seeder
from tests.support.serve_process import free_port, serve_env, until

SECRET = "workers-secret-0123456789abcdef-0123456789abcdef"
ROOT = Path(__file__).resolve().parents[2]
GRACE = 3.0
HOST = socket.gethostname()


def children(pid: int) -> list[int]:
    """The live child processes of ``pid`` (Linux ``/proc``)."""
    with contextlib.suppress(FileNotFoundError):
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
        return [int(p) for p in text.split()]
    return []


def alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


@dataclass
class Workers:
    proc: asyncio.subprocess.Process
    log: Path
    base: str

    def pids(self) -> list[int]:
        return children(self.proc.pid)

    def text(self) -> str:
        return self.log.read_text()

    def lines(self) -> list[dict[str, Any]]:
        out = []
        for line in self.text().splitlines():
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
        return out


@contextlib.asynccontextmanager
async def serve_workers(env: dict[str, str], count: int, log: Path) -> AsyncIterator[Workers]:
    """``runwright serve --workers count`` on a free port, once every worker runs; the
    process group is SIGKILLed afterwards if anything is left."""
    port = free_port()
    with log.open("wb") as sink:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "web.cli", "serve", "--workers", str(count),
            "--port", str(port), env=env, cwd=ROOT, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=sink,
        )  # fmt: skip
    workers = Workers(proc, log, f"http://127.0.0.1:{port}")
    try:

        async def serving() -> bool:
            assert proc.returncode is None, workers.text()
            started = [r for r in workers.lines() if r.get("message", "").startswith("Running on")]
            return len(started) == count and len(workers.pids()) == count

        await until(serving, within=120, what="every worker to serve")
        yield workers
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await asyncio.wait_for(proc.wait(), 30)


@contextlib.contextmanager
def only(served_by: int, stopped: list[int]) -> Iterator[None]:
    """While the block runs, every worker in ``stopped`` is SIGSTOPped, so new connections
    go to ``served_by``."""
    assert served_by not in stopped
    for pid in stopped:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    extra = {"RUNWRIGHT_SHUTDOWN_GRACE_SECONDS": str(GRACE), "RUNWRIGHT_LOG_FORMAT": "json"}
    return serve_env(database_url, tmp_path / "data", SECRET, **extra)


@pytest.fixture
async def owner(database_url: str) -> Seeded:
    db = await Database.connect(database_url, min_size=1, max_size=2)
    try:
        return await Seeder(db, SECRET).tenant_admin()
    finally:
        await db.close()


async def create(w: Workers, owner: Seeded, runs: str, script: list[dict[str, Any]]) -> str:
    """Create a scripted run over a fresh connection; its id."""
    async with httpx.AsyncClient(base_url=w.base, headers=owner.headers, timeout=30) as http:
        response = await http.post(runs, json={"input": "x", "engine": "scripted",
                                               "script": script})  # fmt: skip
        assert response.status_code == 200, response.text
        return str(response.json()["run_id"])


async def status(w: Workers, owner: Seeded, runs: str, run_id: str) -> str:
    async with httpx.AsyncClient(base_url=w.base, headers=owner.headers, timeout=30) as http:
        return str((await http.get(f"{runs}/{run_id}")).json()["status"])


async def new_app(w: Workers, owner: Seeded, slug: str) -> str:
    async with httpx.AsyncClient(base_url=w.base, headers=owner.headers, timeout=30) as http:
        app = (await http.post("/admin/apps", json={"name": slug, "slug": slug})).json()
        return f"/admin/apps/{app['id']}/coding-agent/runs"


async def leases(database_url: str) -> dict[str, asyncpg.Record]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT id, status, lease_owner FROM agent_runs")
        return {str(r["id"]): r for r in rows}
    finally:
        await conn.close()


async def test_each_worker_serves_the_port_as_its_own_node(
    env: dict[str, str], owner: Seeded, tmp_path: Path
) -> None:
    async with serve_workers(env, 2, tmp_path / "serve.log") as w:
        a, b = w.pids()
        started = {r["node_id"] for r in w.lines() if r.get("message", "").startswith("Running on")}
        assert started == {f"{HOST}:{a}", f"{HOST}:{b}"}
        runs = await new_app(w, owner, "workers")
        executed_by: dict[str, int] = {}
        for serving, stopped in ((a, b), (b, a)):
            with only(serving, [stopped]):
                run_id = await create(w, owner, runs, [{"delta": "hello"}])

                async def done(run_id: str = run_id) -> bool:
                    return await status(w, owner, runs, run_id) == "completed"

                await until(done, within=60, what="the run to complete")
            executed_by[run_id] = serving

        ended = {
            r["run_id"]: r["node_id"]
            for r in w.lines()
            if r.get("message", "").startswith("run ended")
        }
        assert {ended[r] for r in executed_by} == {f"{HOST}:{a}", f"{HOST}:{b}"}
        for run_id, pid in executed_by.items():
            assert ended[run_id] == f"{HOST}:{pid}"  # the worker that took the create ran it


async def test_sigterm_to_the_parent_drains_every_worker(
    env: dict[str, str], owner: Seeded, database_url: str, tmp_path: Path
) -> None:
    async with serve_workers(env, 2, tmp_path / "serve.log") as w:
        a, b = w.pids()
        runs = await new_app(w, owner, "drain-workers")
        hanging: dict[int, str] = {}
        for serving, stopped in ((a, b), (b, a)):
            with only(serving, [stopped]):
                hanging[serving] = await create(
                    w, owner, runs, [{"delta": "working"}, {"hang": True}]
                )

                # The queue is shared: the worker that took the create claims the run at
                # once, but the other one could once it runs again.
                async def claimed(run_id: str = hanging[serving], pid: int = serving) -> bool:
                    rows = await leases(database_url)
                    return rows[run_id]["lease_owner"] == f"{HOST}:{pid}"

                await until(claimed, within=60, what="the serving worker to claim its run")
        quick = await create(w, owner, runs, [{"delta": "a"}, {"sleep_ms": 1000}, {"delta": "b"}])

        async def all_running() -> bool:
            rows = await leases(database_url)
            return all(rows[r]["status"] == "running" for r in [*hanging.values(), quick])

        await until(all_running, within=60, what="every run to run")
        rows = await leases(database_url)
        assert {rows[r]["lease_owner"] for r in hanging.values()} == {f"{HOST}:{a}", f"{HOST}:{b}"}

        w.proc.send_signal(signal.SIGTERM)  # the parent only: it forwards to the workers
        assert await asyncio.wait_for(w.proc.wait(), GRACE + 90) == 0
        assert not alive(a) and not alive(b)  # the parent waited for (reaped) both

    rows = await leases(database_url)
    assert rows[quick]["status"] == "completed"
    for run_id in hanging.values():
        assert rows[run_id]["status"] == "queued" and rows[run_id]["lease_owner"] is None
    assert not [r for r in rows.values() if r["status"] == "running"]
    conn = await asyncpg.connect(database_url)
    try:
        for run_id in hanging.values():
            last = await conn.fetchrow(
                "SELECT type, diagnostics::text AS d FROM run_events WHERE run_id = $1 "
                "ORDER BY seq DESC LIMIT 1", uuid.UUID(run_id),
            )  # fmt: skip
            assert last["type"] == "plan.updated" and "RUN_REQUEUED" in last["d"]
    finally:
        await conn.close()
    msgs = [r.get("message", "") for r in w.lines()]
    assert "all workers stopped" in msgs


async def test_a_killed_worker_is_replaced_and_its_run_settled(
    env: dict[str, str], owner: Seeded, database_url: str, tmp_path: Path
) -> None:
    async with serve_workers(env, 2, tmp_path / "serve.log") as w:
        a, b = w.pids()
        runs = await new_app(w, owner, "kill-worker")
        with only(a, [b]):  # b runs again only once a claimed the run (a shared queue)
            run_id = await create(w, owner, runs, [{"delta": "working"}, {"hang": True}])

            async def running_on_a() -> bool:
                row = (await leases(database_url))[run_id]
                return bool(row["status"] == "running" and row["lease_owner"] == f"{HOST}:{a}")

            await until(running_on_a, within=60, what="the run to run on worker a")
        os.kill(a, signal.SIGKILL)

        async def replaced() -> list[int]:
            pids = w.pids()
            return pids if len(pids) == 2 and a not in pids and b in pids else []

        pids = await until(replaced, within=60, what="a new worker")
        (c,) = set(pids) - {b}

        async def settled() -> bool:
            return await status(w, owner, runs, run_id) == "failed"

        # the replacement reconciles the runs its dead predecessor left running
        await until(settled, within=120, what="the dead worker's run to be settled")
        async with httpx.AsyncClient(base_url=w.base, headers=owner.headers, timeout=30) as http:
            final = (await http.get(f"{runs}/{run_id}")).json()
        assert "restarted" in final["error"]

        with only(c, [b]):  # the new worker serves the port
            again = await create(w, owner, runs, [{"delta": "hello"}])

            async def done() -> bool:
                return await status(w, owner, runs, again) == "completed"

            await until(done, within=60, what="a run on the new worker")
        assert w.proc.returncode is None
        errors = [r["message"] for r in w.lines() if r.get("logger") == "runwright.workers"]
        assert any(f"(pid {a}) exited with status -9" in m for m in errors)


async def test_a_worker_that_cannot_start_stops_the_parent(
    env: dict[str, str], tmp_path: Path
) -> None:
    bad = {**env, "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/none"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "web.cli", "serve", "--workers", "2", "--port", str(free_port()),
        env=bad, cwd=ROOT, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        _, err = await asyncio.wait_for(proc.communicate(), 120)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 1
    assert b"worker 0 exited during start-up" in err
    assert b"error: serve --workers stopped after a failure" in err
