"""What a real ``runwright serve`` process writes: one "Running on" line, no pgserver
chatter at INFO, JSON lines that carry the ids of the run and request they concern, and
``/metrics`` behind its token."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from storage.database import Database
from tests.support.metrics import METRICS_TOKEN, Samples, metrics_headers, parse, value
from tests.support.runs import parse_sse
from tests.support.seed import Seeder
from tests.support.serve_process import until

SECRET = "e2e-secret-0123456789abcdef-0123456789abcdef"
ROOT = Path(__file__).resolve().parents[2]
NODE = "obs-node-1"
START_BUDGET_SECONDS = 120.0  # an embedded Postgres's initdb on a busy 2-core machine


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def serve(env: dict[str, str], port: int, log: Path) -> AsyncIterator[str]:
    """Start ``runwright serve`` with stderr and stdout into ``log``; yield its base URL
    once ``/healthz`` answers; stop it with SIGTERM (its shutdown runs) afterwards."""
    with log.open("wb") as sink:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "web.cli", "serve", "--port", str(port),
            env=env, cwd=ROOT, start_new_session=True, stdout=sink, stderr=sink,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base) as http:
            deadline = asyncio.get_running_loop().time() + START_BUDGET_SECONDS
            while True:
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get("/healthz")).status_code == 200:
                        break
                assert proc.returncode is None, _tail(log)
                assert asyncio.get_running_loop().time() < deadline, _tail(log)
                await asyncio.sleep(0.1)
        yield base
        os.killpg(proc.pid, signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await asyncio.wait_for(proc.wait(), 10)


def _tail(log: Path) -> str:
    return log.read_text()[-3000:]


def _base_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNWRIGHT_")}
    env.pop("DATABASE_URL", None)
    return {
        **env,
        "RUNWRIGHT_DATA_DIR": str(data_dir),
        "RUNWRIGHT_JWT_SECRET": SECRET,
        "RUNWRIGHT_SCRIPTED_ENGINE_ENABLED": "1",
        "RUNWRIGHT_LOCAL_MODEL_AUTOSTART": "0",
        "RUNWRIGHT_NODE_ID": NODE,
    }


async def test_serve_prints_one_running_on_line_and_no_pgserver_chatter(tmp_path: Path):
    # The embedded Postgres (no DATABASE_URL), as a user's first `runwright serve` runs it;
    # a short directory: its Unix socket path must stay under the kernel's 107 bytes.
    data_dir = Path(tempfile.mkdtemp(prefix="rw-obs-"))
    os.chmod(data_dir, 0o755)  # pgserver runs postgres as an unprivileged user under root
    log = tmp_path / "serve.log"
    try:
        env = {**_base_env(data_dir), "RUNWRIGHT_LOG_FORMAT": "text"}
        async with serve(env, _port(), log):
            pass
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    lines = log.read_text().splitlines()
    running_on = [line for line in lines if "Running on http://127.0.0.1:" in line]
    assert len(running_on) == 1, lines
    assert not [line for line in lines if " pgserver" in line], lines
    assert any("embedded Postgres ready" in line for line in lines), lines


async def test_serve_json_logs_carry_the_ids_of_a_run(database_url: str, tmp_path: Path):
    db = await Database.connect(database_url, min_size=1, max_size=2)
    try:
        owner = await Seeder(db, SECRET).tenant_admin()
    finally:
        await db.close()
    env = {
        **_base_env(tmp_path / "data"),
        "DATABASE_URL": database_url,
        "RUNWRIGHT_LOG_FORMAT": "json",
        "RUNWRIGHT_METRICS_TOKEN": METRICS_TOKEN,
    }
    log = tmp_path / "serve.log"
    async with serve(env, _port(), log) as base:
        async with httpx.AsyncClient(base_url=base, headers=owner.headers, timeout=30) as http:
            app = (await http.post("/admin/apps", json={"name": "a", "slug": "logs"})).json()
            runs = f"/admin/apps/{app['id']}/coding-agent/runs"
            created = await http.post(
                runs,
                json={"input": "x", "engine": "scripted", "script": [{"delta": "hi"}]},
                headers={"X-Request-ID": "e2e-create-1"},
            )
            assert created.headers["X-Request-ID"] == "e2e-create-1"
            run_id = created.json()["run_id"]
            stream = await http.get(f"{runs}/{run_id}/stream")
            assert parse_sse(stream.text)[-1]["data"]["event"] == "run.completed"
            done = {"engine": "scripted", "status": "completed"}

            async def counted() -> Samples | None:
                scraped = await http.get("/metrics", headers=metrics_headers())
                assert scraped.status_code == 200
                samples = parse(scraped.text)
                return samples if value(samples, "runwright_runs_finished_total", done) else None

            # The actor counts the run just after its terminal event is stored, so a
            # client may read that event first.
            metrics = await until(counted, within=30, what="the finished run counted")
    assert value(metrics, "runwright_runs_created_total", {"engine": "scripted"}) == 1
    assert value(metrics, "runwright_runs_finished_total", done) == 1

    lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    assert all(line["node_id"] == NODE for line in lines)
    assert len([line for line in lines if "Running on" in line["message"]]) == 1
    create = _one(lines, lambda line: line.get("request_id") == "e2e-create-1")
    assert create["logger"] == "runwright.access" and create["status"] == 200
    assert create["tenant_id"] == str(owner.tenant_id) and create["app_id"] == app["id"]
    stream_line = _one(lines, lambda line: line.get("path", "").endswith("/stream"))
    assert stream_line["run_id"] == run_id and stream_line["tenant_id"] == str(owner.tenant_id)
    ids = {"run_id": run_id, "tenant_id": str(owner.tenant_id), "app_id": app["id"]}
    for message in ("run started (attempt 0)", "run ended completed"):
        line = _one(lines, lambda line, message=message: line["message"] == message)
        assert {key: line.get(key) for key in ids} == ids, line


def _one(lines: list[dict[str, Any]], predicate: Any) -> dict[str, Any]:
    found = [line for line in lines if predicate(line)]
    assert len(found) == 1, found
    return found[0]
