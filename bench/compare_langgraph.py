"""Runwright against the LangGraph dev server, side by side in one run (issue 11 item 6).

Workload, identical for both: ``--clients`` concurrent clients, each in a loop creating a
run and reading its stream to the end; every run makes one streamed chat completion of
``--chunks`` chunks from the same scripted OpenAI-compatible server (``bench.openai_stub``)
over HTTP.

- Runwright: a real ``runwright serve`` (``--workers N`` via ``--rw-workers``), the native
  engine, ``POST .../runs`` then ``GET .../runs/{id}/stream`` to the terminal event.
- LangGraph: ``langgraph dev`` (``langgraph-cli[inmem]``, the in-memory runtime) from its own
  venv (``bench/langgraph/setup.sh``), the one-node graph of ``bench/langgraph/graph.py``
  streaming the chunks as custom stream events; a fresh thread per run: ``POST /threads``
  then ``POST /threads/{id}/runs/stream`` (``stream_mode: custom``) until the stream ends.

Two modes: ``per-client`` (Runwright: an app per client; LangGraph: an assistant per client)
and ``shared`` (one app / the graph's default assistant for every client). Within a mode the
two systems alternate, ``--rounds`` times each (order swapped every round), against servers
that stay up, each warmed up first. Every measurement records runs/s, create -> first delta
p50/p99 (Runwright: first ``assistant.delta``; LangGraph: first custom event), the server's
CPU (process tree) per run, the CPU of Postgres, the client and everything else, and the
load average. Each client of either system has its own connection pool (so a Runwright
client's create and stream use one kept-alive connection, i.e. one worker).

    bash bench/langgraph/setup.sh          # once: the LangGraph venv
    .venv/bin/python -m bench.compare_langgraph --runs 600 --rounds 2
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from statistics import mean
from typing import Any

import httpx
import psutil

from bench import client
from bench.env import REPO, Tenancy, free_port, machine_busy, tree_cpu
from bench.stack import RESULTS, add_common_args, create_app, pin_client, result_name, stack
from bench.throughput import run_body

LG_DIR = REPO / "bench" / "langgraph"
LG_VENV = Path(
    os.environ.get("BENCH_LANGGRAPH_VENV")
    or Path.home() / ".cache" / "runwright-bench" / "langgraph-venv"
)


def _pg_cpu() -> float:
    total = 0.0
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if proc.exe().startswith("/usr/lib/postgresql/"):
                t = proc.cpu_times()
                total += t.user + t.system
    return total


class Meter:
    """CPU (cores) of one server's process tree, Postgres, this client and the machine over
    a window, plus the 1-minute load average at its end."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.me = psutil.Process()

    def _snap(self) -> dict[str, float]:
        mine = self.me.cpu_times()
        return {
            "server": tree_cpu(self.pid),
            "postgres": _pg_cpu(),
            "client": mine.user + mine.system,
            "machine": machine_busy(),
        }

    def __enter__(self) -> Meter:
        self.t0, self.start = time.perf_counter(), self._snap()
        return self

    def __exit__(self, *exc: object) -> None:
        end, wall = self._snap(), time.perf_counter() - self.t0
        used = {k: (end[k] - self.start[k]) / wall for k in end}
        used["other"] = used["machine"] - used["server"] - used["postgres"] - used["client"]
        self.cores = {k: round(max(0.0, v), 2) for k, v in used.items()}
        self.loadavg = [round(x, 2) for x in os.getloadavg()]


# ---- LangGraph ------------------------------------------------------------------------


@contextlib.contextmanager
def langgraph_server(model_url: str, cpus: str, jobs: int, log: Path) -> Iterator[str]:
    """``langgraph dev`` on a free port (pinned like Runwright's server); its base URL."""
    exe = LG_VENV / "bin" / "langgraph"
    if not exe.exists():
        raise SystemExit(f"{exe} is missing: run `bash bench/langgraph/setup.sh` first")
    port = free_port()
    cmd = [str(exe), "dev", "--no-browser", "--no-reload", "--host", "127.0.0.1",
           "--port", str(port), "--n-jobs-per-worker", str(jobs), "--config", "langgraph.json",
           "--server-log-level", "WARNING"]  # fmt: skip
    if cpus and shutil.which("taskset"):
        cmd = ["taskset", "-c", cpus, *cmd]
    env = {
        **os.environ,
        "BENCH_MODEL_URL": model_url,
        "LANGGRAPH_CLI_NO_ANALYTICS": "1",  # no usage report from the CLI
        "LANGSMITH_TRACING": "false",
        "LANGCHAIN_TRACING_V2": "false",
    }
    with log.open("wb") as sink:
        proc = subprocess.Popen(cmd, cwd=LG_DIR, env=env, stdout=sink, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"langgraph dev exited; see {log}")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"{base}/ok", timeout=2) as resp:
                    if resp.status == 200:
                        break
            if time.monotonic() > deadline:
                raise RuntimeError(f"langgraph dev not ready; see {log}")
            time.sleep(0.5)
        yield base
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 15)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait(10)


def lg_server_pid(base: str) -> int:
    """The pid of the process listening on ``base``'s port (the API server itself)."""
    port = int(base.rsplit(":", 1)[1])
    for conn in psutil.net_connections("tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port and conn.pid:
            return int(conn.pid)
    raise RuntimeError("langgraph dev's listening process not found")


async def lg_run(http: httpx.AsyncClient, assistant: str, chunks: int) -> tuple[float, str | None]:
    """One LangGraph run on a fresh thread, streamed to its end: (first delta time, error)."""
    thread = (await http.post("/threads", json={})).json()["thread_id"]
    body = {"assistant_id": assistant, "input": {"input": "Say hello."}, "stream_mode": ["custom"]}
    first: float | None = None
    deltas = 0
    event = ""
    async with http.stream("POST", f"/threads/{thread}/runs/stream", json=body) as response:
        if response.status_code != 200:
            return 0.0, f"HTTP {response.status_code}"
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                event = line[7:]
                if event == "error":
                    return 0.0, "error event"
            elif line.startswith("data: ") and event == "custom":
                deltas += 1
                if first is None:
                    first = time.perf_counter()
    if deltas != chunks or first is None:
        return 0.0, f"{deltas} deltas"
    return first, None


# ---- the load ---------------------------------------------------------------------------


async def drive(
    system: str, target: Any, *, clients: int, runs: int, chunks: int, max_seconds: float
) -> dict[str, Any]:
    """``runs`` runs over ``clients`` clients against one system; the figures."""
    first: list[float] = []
    done = 0
    failures: list[str] = []
    budget = client.Budget(runs, time.perf_counter() + max_seconds)

    async def rw_worker(ten: Tenancy, base: str) -> None:
        nonlocal done
        body = run_body("native", chunks)
        async with client.session(base, request_timeout=120) as pool:
            async for t0, res in client.create_and_read(pool, ten, body, budget, failures):
                if res.error or res.terminal_type != "run.completed" or not res.gap_free():
                    failures.append(res.error or f"bad stream {res.run_id}: {res.types}")
                    continue
                if res.first_delta_at is not None:
                    first.append((res.first_delta_at - t0) * 1000)
                done += 1

    async def lg_worker(assistant: str, base: str) -> None:
        nonlocal done
        limits = httpx.Limits(max_connections=None)
        async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as http:
            while budget.take():
                t0 = time.perf_counter()
                try:
                    at, error = await asyncio.wait_for(lg_run(http, assistant, chunks), 60)
                except Exception as exc:  # noqa: BLE001 - counted, reported
                    failures.append(repr(exc))
                    continue
                if error is not None:
                    failures.append(error)
                    continue
                first.append((at - t0) * 1000)
                done += 1

    base, per_client = target
    t_start = time.perf_counter()
    if system == "runwright":
        await asyncio.gather(*(rw_worker(per_client[i], base) for i in range(clients)))
    else:
        await asyncio.gather(*(lg_worker(per_client[i], base) for i in range(clients)))
    wall = time.perf_counter() - t_start
    return {
        "runs_completed": done,
        "wall_s": round(wall, 2),
        "runs_per_s": round(done / wall, 1),
        "failures": len(failures),
        "failure_samples": failures[:3],
        "first_delta_ms": {
            "p50": round(client.percentile(first, 50), 1),
            "p99": round(client.percentile(first, 99), 1),
        },
    }


def measure(system: str, pid: int, target: Any, args: argparse.Namespace) -> dict[str, Any]:
    with Meter(pid) as meter:
        result = asyncio.run(
            drive(system, target, clients=args.clients, runs=args.runs, chunks=args.chunks,
                  max_seconds=args.max_seconds)
        )  # fmt: skip
    result["cpu_cores"] = meter.cores
    result["loadavg"] = meter.loadavg
    rate = result["runs_per_s"]
    per_run = 1000 * meter.cores["server"] / rate if rate else None
    result["server_cpu_ms_per_run"] = round(per_run, 2) if per_run is not None else None
    return result


def summary(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Means over rounds and the Runwright / LangGraph ratio of each round and of the means."""
    out: dict[str, Any] = {}
    for system in ("runwright", "langgraph"):
        rs = [r[system] for r in rounds]
        out[system] = {
            "runs_per_s": [r["runs_per_s"] for r in rs],
            "mean_runs_per_s": round(mean(r["runs_per_s"] for r in rs), 1),
            "first_delta_p50_ms": [r["first_delta_ms"]["p50"] for r in rs],
            "first_delta_p99_ms": [r["first_delta_ms"]["p99"] for r in rs],
            "server_cpu_ms_per_run": [r["server_cpu_ms_per_run"] for r in rs],
            "other_cores": [r["cpu_cores"]["other"] for r in rs],
            "loadavg_1m": [r["loadavg"][0] for r in rs],
            "failures": sum(r["failures"] for r in rs),
        }
    lg = out["langgraph"]["mean_runs_per_s"]
    out["ratio_of_means"] = round(out["runwright"]["mean_runs_per_s"] / lg, 2) if lg else None
    out["ratio_per_round"] = [
        round(r["runwright"]["runs_per_s"] / r["langgraph"]["runs_per_s"], 2)
        if r["langgraph"]["runs_per_s"]
        else None
        for r in rounds
    ]
    return out


def run_mode(args: argparse.Namespace, st: Any, lg_base: str, per: bool) -> dict[str, Any]:
    """Warm both systems up, then ``args.rounds`` alternating measurements of each."""
    mode = "per-client" if per else "shared"
    lg_pid = lg_server_pid(lg_base)
    rw_tens = [
        dataclasses.replace(st.tenancy, app_id=create_app(st.server.url, st.tenancy, f"cmp-{i}"))
        if per
        else st.tenancy
        for i in range(args.clients)
    ]
    assistants = ["agent"] * args.clients
    if per:
        with httpx.Client(base_url=lg_base, timeout=30) as http:
            assistants = [
                http.post("/assistants", json={"graph_id": "agent"}).json()["assistant_id"]
                for _ in range(args.clients)
            ]
    targets = {
        "runwright": (st.server.pid, (st.server.url, rw_tens)),
        "langgraph": (lg_pid, (lg_base, assistants)),
    }
    warm = argparse.Namespace(**{**vars(args), "runs": args.warmup}) if args.warmup else None
    for system, (pid, target) in targets.items():
        if warm is not None:
            w = measure(system, pid, target, warm)
            print(f"warm-up {mode} {system}: {w['runs_per_s']} runs/s", flush=True)
    rounds = []
    for r in range(args.rounds):
        order = ["langgraph", "runwright"] if r % 2 == 0 else ["runwright", "langgraph"]
        got = {}
        for system in order:
            pid, target = targets[system]
            got[system] = measure(system, pid, target, args)
            print(f"{mode} round {r + 1} {system}: {got[system]['runs_per_s']} "
                  f"runs/s, cpu/run {got[system]['server_cpu_ms_per_run']} ms, "
                  f"load {got[system]['loadavg']}", flush=True)  # fmt: skip
        rounds.append(got)
    return {"rounds": rounds, "summary": summary(rounds)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Runwright vs the LangGraph dev server")
    add_common_args(parser)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--runs", type=int, default=600, help="runs per measurement")
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2, help="measurements per system and mode")
    parser.add_argument("--chunks", type=int, default=10)
    parser.add_argument("--max-seconds", type=float, default=240.0)
    parser.add_argument("--modes", default="per-client,shared")
    parser.add_argument("--rw-workers", type=int, default=1, help="runwright serve --workers")
    parser.add_argument("--lg-jobs", type=int, default=50, help="langgraph --n-jobs-per-worker")
    parser.add_argument(
        "--lg-cpus", default=None, help="taskset list for langgraph dev (default: --server-cpus)"
    )
    args = parser.parse_args(argv)
    if args.rw_workers > 1:
        args.env.append(f"RUNWRIGHT_WORKERS={args.rw_workers}")
    pin_client(args.client_cpus)
    name = result_name(args, "compare-langgraph")
    modes = [m for m in args.modes.split(",") if m]
    lg_cpus = args.server_cpus if args.lg_cpus is None else args.lg_cpus
    report: dict[str, Any] = {
        "clients": args.clients, "runs": args.runs, "chunks": args.chunks,
        "rw_workers": args.rw_workers, "lg_jobs": args.lg_jobs,
        "server_cpus": args.server_cpus, "client_cpus": args.client_cpus, "lg_cpus": lg_cpus,
        "loadavg_start": [round(x, 2) for x in os.getloadavg()], "modes": {},
    }  # fmt: skip
    with stack(args, name, native_chunks=args.chunks) as st:
        assert st.model_url is not None
        for mode in modes:
            # A fresh LangGraph server per mode: its dev runtime pickles its whole in-memory
            # store (every thread so far) to bench/langgraph/.langgraph_api on a timer, so its
            # CPU per run grows with the threads earlier measurements created.
            shutil.rmtree(LG_DIR / ".langgraph_api", ignore_errors=True)
            with langgraph_server(st.model_url, lg_cpus, args.lg_jobs,
                                  RESULTS / f"{name}.langgraph-{mode}.log") as lg_base:  # fmt: skip
                report["modes"][mode] = run_mode(args, st, lg_base, mode == "per-client")
    report["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    out = RESULTS / f"{name}.json"
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps({m: v["summary"] for m, v in report["modes"].items()}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
