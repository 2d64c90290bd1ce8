"""Latency: one client, sequential runs; create -> first ``assistant.delta`` p50/p99.

Each run is created (POST) and then its stream is read from the start; the clock starts
before the POST and stops when the first ``assistant.delta`` frame is parsed. Also
reported: the POST alone and create -> terminal event.

    .venv/bin/python -m bench.latency --runs 300
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

from bench import client
from bench.env import CpuMeter, wait_for_quiet
from bench.stack import RESULTS, Stack, add_common_args, pin_client, result_name, stack
from bench.throughput import run_body


async def sequential(
    st: Stack, runs: int, max_seconds: float, body: dict[str, Any]
) -> dict[str, Any]:
    post: list[float] = []
    first: list[float] = []
    e2e: list[float] = []
    failures: list[str] = []
    deadline = time.perf_counter() + max_seconds
    base, ten = st.server.url, st.tenancy
    async with client.session(base, request_timeout=60) as http:
        for _ in range(runs):
            if time.perf_counter() > deadline:
                break
            t0 = time.perf_counter()
            run_id = await client.create_run(http, ten, body)
            t1 = time.perf_counter()
            res = await client.read_stream(http, ten, run_id, read_timeout=30)
            if res.error or res.first_delta_at is None or res.terminal_at is None:
                failures.append(res.error or f"no delta/terminal in {run_id}: {res.types}")
                continue
            post.append((t1 - t0) * 1000)
            first.append((res.first_delta_at - t0) * 1000)
            e2e.append((res.terminal_at - t0) * 1000)

    def stats(values: list[float]) -> dict[str, float]:
        return {
            "p50": round(client.percentile(values, 50), 2),
            "p99": round(client.percentile(values, 99), 2),
        }

    return {
        "runs": len(first),
        "failures": len(failures),
        "failure_samples": failures[:5],
        "post_ms": stats(post),
        "first_delta_ms": stats(first),
        "e2e_ms": stats(e2e),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Runwright sequential latency benchmark")
    add_common_args(parser)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--chunks", type=int, default=10)
    parser.add_argument("--max-seconds", type=float, default=120.0)
    parser.add_argument("--quiet-wait", type=float, default=60.0)
    args = parser.parse_args(argv)
    pin_client(args.client_cpus)
    body = run_body("scripted", args.chunks)
    name = result_name(args, "latency")
    with stack(args, name) as st:
        asyncio.run(sequential(st, args.warmup, 60, body))
        quiet = wait_for_quiet(args.quiet_wait)
        cpu = CpuMeter(st.server.pid).start()
        result = asyncio.run(sequential(st, args.runs, args.max_seconds, body))
        result["cpu_cores"] = cpu.stop()
        result["peak_rss_mib"] = round(st.rss.peak / 2**20, 1)
    result.update(
        machine_load_before=quiet, server_cpus=args.server_cpus, client_cpus=args.client_cpus
    )
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
