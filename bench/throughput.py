"""Throughput: N concurrent clients, each creating a run and reading its SSE stream to the end.

Scripted engine (default): the script is one step of ``--chunks`` deltas with no delay.
Native engine (``--engine native``): the run's model is the scripted OpenAI-compatible
server (``bench.openai_stub``) on loopback answering ``--chunks`` streamed chunks. The
Supervisor executes one run per (app, user) workspace at a time, so by default each native
client gets its own app (``--workspaces per-client``: 50 workspaces, runs execute
concurrently); ``--workspaces shared`` puts every client in one app, i.e. measures runs
executed one after another (the figure before this option existed).

Reports completed runs/s, create -> first ``assistant.delta`` p50/p99, create -> terminal
event p50/p99 and the server's peak RSS; with ``--profile`` also records the server with
py-spy during the measured window.

    .venv/bin/python -m bench.throughput --clients 50 --runs 3000
    .venv/bin/python -m bench.throughput --engine native --runs 1000
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
from typing import Any

from bench import client
from bench.env import VENV_BIN, CpuMeter, Tenancy, wait_for_quiet
from bench.pg_stats import PgMeter
from bench.stack import (
    RESULTS,
    Stack,
    add_common_args,
    create_app,
    pin_client,
    result_name,
    stack,
)


def run_body(engine: str, chunks: int) -> dict[str, Any]:
    if engine == "scripted":
        deltas = [f"chunk {i} " for i in range(chunks)]
        return {"input": "bench", "engine": "scripted", "script": [{"deltas": deltas}]}
    return {"input": "Say hello.", "engine": "native"}


def client_tenancies(st: Stack, clients: int, per_client: bool) -> list[Tenancy]:
    """One tenancy per client: the stack's app for all, or (``per_client``) an app of its
    own each (same user and token), so that no two clients share an (app, user) workspace."""
    if not per_client:
        return [st.tenancy] * clients
    return [
        dataclasses.replace(st.tenancy, app_id=create_app(st.server.url, st.tenancy, f"bench-{i}"))
        for i in range(clients)
    ]


async def load(
    st: Stack,
    *,
    clients: int,
    runs: int,
    max_seconds: float,
    body: dict[str, Any],
    tenancies: list[Tenancy] | None = None,
) -> dict[str, Any]:
    """Run ``runs`` runs over ``clients`` workers (bounded by ``max_seconds``); worker i
    uses ``tenancies[i]`` (default: the stack's tenancy for all)."""
    first: list[float] = []
    e2e: list[float] = []
    failures: list[str] = []
    terminal: dict[str, int] = {}
    budget = client.Budget(runs, time.perf_counter() + max_seconds)
    base = st.server.url
    tens = tenancies or [st.tenancy] * clients

    async def worker(ten: Tenancy) -> None:
        # Each worker has its own client, so its own connection pool: httpcore walks every
        # connection of a pool on each request (and polls each idle one's socket); with one
        # pool for 50 workers that walk was a fifth of the load client's CPU
        # (docs/benchmarks.md, "The load client").
        async with client.session(base, request_timeout=120) as http:
            async for t0, res in client.create_and_read(http, ten, body, budget, failures):
                if res.error or res.terminal_at is None or not res.gap_free():
                    failures.append(res.error or f"bad stream {res.run_id}: {res.seqs}")
                    continue
                kind = res.terminal_type or "?"
                terminal[kind] = terminal.get(kind, 0) + 1
                if res.first_delta_at is not None:
                    first.append((res.first_delta_at - t0) * 1000)
                e2e.append((res.terminal_at - t0) * 1000)

    t_start = time.perf_counter()
    await asyncio.gather(*(worker(tens[i]) for i in range(clients)))
    wall = time.perf_counter() - t_start
    return {
        "runs_completed": len(e2e),
        "wall_s": round(wall, 3),
        "runs_per_s": round(len(e2e) / wall, 1),
        "terminal_events": terminal,
        "failures": len(failures),
        "failure_samples": failures[:5],
        "first_delta_ms": {
            "p50": round(client.percentile(first, 50), 1),
            "p99": round(client.percentile(first, 99), 1),
            "n": len(first),
        },
        "e2e_ms": {
            "p50": round(client.percentile(e2e, 50), 1),
            "p99": round(client.percentile(e2e, 99), 1),
        },
    }


def start_profiler(
    pid: int, seconds: int, name: str, gil: bool = False
) -> subprocess.Popen[bytes] | None:
    """py-spy record of the server as raw collapsed stacks, if py-spy is installed.

    Default: every thread, idle ones too (``--idle``), so an actor thread's samples show
    what its run waits on; ``gil``: only the thread holding the GIL (where CPU goes).
    """
    pyspy = shutil.which("py-spy") or str(VENV_BIN / "py-spy")
    if not shutil.which(pyspy):
        print("py-spy not found; skipping the profile", file=sys.stderr)
        return None
    out = RESULTS / f"{name}.profile{'-gil' if gil else ''}.txt"
    return subprocess.Popen(
        [pyspy, "record", "--pid", str(pid), "--duration", str(seconds), "--rate", "200",
         "--format", "raw", "--threads", "--output", str(out), "--nonblocking",
         *(["--gil"] if gil else ["--idle"])],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Runwright throughput benchmark")
    add_common_args(parser)
    parser.add_argument("--engine", choices=("scripted", "native"), default="scripted")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--chunks", type=int, default=10)
    parser.add_argument("--max-seconds", type=float, default=180.0)
    parser.add_argument("--profile", type=int, default=0, metavar="SECONDS")
    parser.add_argument("--quiet-wait", type=float, default=60.0, help="max s to wait for idle")
    parser.add_argument("--profile-gil", action="store_true", help="py-spy --gil")
    parser.add_argument(
        "--workspaces", choices=("per-client", "shared"), default="per-client",
        help="native: an app (so an (app, user) workspace) per client, or one for all",
    )  # fmt: skip
    args = parser.parse_args(argv)
    pin_client(args.client_cpus)
    name = result_name(args, f"throughput-{args.engine}")
    body = run_body(args.engine, args.chunks)
    native = args.chunks if args.engine == "native" else None
    per_client = args.engine == "native" and args.workspaces == "per-client"
    with stack(args, name, native_chunks=native) as st:
        tens = client_tenancies(st, args.clients, per_client)
        warm = asyncio.run(
            load(
                st, clients=args.clients, runs=args.warmup, max_seconds=60, body=body,
                tenancies=tens,
            )
        )  # fmt: skip
        st.rss.reset()
        quiet = wait_for_quiet(args.quiet_wait)
        prof = (
            start_profiler(st.server.pid, args.profile, name, args.profile_gil)
            if args.profile
            else None
        )
        pg = PgMeter(args.pg, args.db).start()
        cpu = CpuMeter(st.server.pid).start()
        try:
            result = asyncio.run(
                load(
                    st, clients=args.clients, runs=args.runs, max_seconds=args.max_seconds,
                    body=body, tenancies=tens,
                )
            )  # fmt: skip
        finally:
            if prof is not None:
                try:
                    prof.wait(args.profile + 30)
                except subprocess.TimeoutExpired:
                    prof.kill()
        result["cpu_cores"] = cpu.stop()
        # The cluster's own CPU, statements and agent_runs updates per run (bench/pg_stats.py)
        result["postgres"] = pg.stop(result["runs_completed"])
        # Server CPU time (its process tree) per completed run: steadier than runs/s when
        # other work shares the cores (docs/benchmarks.md, "Issue 11").
        done = result["runs_completed"]
        result["server_cpu_ms_per_run"] = (
            round(1000 * cpu.server_seconds / done, 2) if done else None
        )
        # The load client's CPU per run: it shares the machine with the server and Postgres.
        result["client_cpu_ms_per_run"] = (
            round(1000 * cpu.client_seconds / done, 2) if done else None
        )
        result["load_average"] = [round(x, 2) for x in os.getloadavg()]
        result["machine_load_before"] = quiet
        result["peak_rss_mib"] = round(st.rss.peak / 2**20, 1)
    result.update(
        engine=args.engine, clients=args.clients, chunks=args.chunks,
        workspaces=args.workspaces if args.engine == "native" else None,
        apps=len({t.app_id for t in tens}),
        warmup_failures=warm["failures"], server_cpus=args.server_cpus,
        client_cpus=args.client_cpus,
    )  # fmt: skip
    out = RESULTS / f"{name}.json"
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
