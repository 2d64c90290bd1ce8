"""Concurrency: many live runs at once, each emitting 2 events/s, each with one SSE reader.

Every run is a scripted run of ``--seconds * 2`` steps ``{"delta": "d<k>", "delay_ms": 500}``,
so it stays live for about ``--seconds`` seconds. The client creates the runs (at most
``--create-concurrency`` creates in flight) and opens each run's stream right after its
create. Measured:

- delivery latency per event: client receive wall time minus the envelope ``ts`` (stamped
  by the run's actor when it numbers the event), p50/p99/max, over all events and over the
  steady window in which every run is live;
- loss: every stream must be gap-free (seq 1..n), end with a terminal event and carry all
  ``--seconds * 2`` deltas;
- the server's peak RSS.

    .venv/bin/python -m bench.concurrency --runs 1000 --seconds 45
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


def script(seconds: float) -> list[dict[str, Any]]:
    return [{"delta": f"d{k} ", "delay_ms": 500} for k in range(int(seconds * 2))]


async def live_load(st: Stack, args: argparse.Namespace) -> dict[str, Any]:
    steps = int(args.seconds * 2)
    body = {"input": "bench", "engine": "scripted", "script": script(args.seconds)}
    base, ten = st.server.url, st.tenancy
    gate = asyncio.Semaphore(args.create_concurrency)
    results: list[client.StreamResult] = []
    create_failures: list[str] = []
    created = 0
    ramp_end = float("inf")
    timeout = args.seconds + args.runs / 10 + 120  # every read and the whole load are bounded

    async with client.session(base, request_timeout=timeout) as http:

        async def one() -> None:
            nonlocal created, ramp_end
            async with gate:
                try:
                    run_id = await client.create_run(http, ten, body)
                except Exception as exc:  # noqa: BLE001 - counted, reported
                    create_failures.append(repr(exc))
                    return
            created += 1
            if created == args.runs:
                ramp_end = time.time()
            res = await client.read_stream(
                http, ten, run_id, measure_delay=True, read_timeout=timeout
            )
            results.append(res)

        t0 = time.time()
        tasks = [asyncio.create_task(one()) for _ in range(args.runs)]
        await asyncio.wait(tasks, timeout=timeout)
        for task in tasks:
            task.cancel()
        end = time.time()

    # Steady window: from the last create to the first terminal event, every run is live.
    first_end = min((r.received[-1] for r in results if r.terminal_type and r.received),
                    default=end)  # fmt: skip
    all_delays: list[float] = []
    steady: list[float] = []
    bad: list[str] = []
    for res in results:
        deltas = res.types.count("assistant.delta")
        if not (res.gap_free() and res.terminal_type == "run.completed" and deltas >= steps):
            bad.append(
                f"{res.run_id}: error={res.error} events={len(res.seqs)} deltas={deltas} "
                f"terminal={res.terminal_type} gap_free={res.gap_free()}"
            )
        all_delays.extend(res.delays_ms)
        steady.extend(d for d, t in zip(res.delays_ms, res.received, strict=True)
                      if ramp_end <= t <= first_end)  # fmt: skip

    def stats(values: list[float]) -> dict[str, float]:
        return {
            "n": len(values),
            "p50": round(client.percentile(values, 50), 1),
            "p99": round(client.percentile(values, 99), 1),
            "max": round(max(values, default=float("nan")), 1),
        }

    return {
        "runs": args.runs,
        "streams_read": len(results),
        "create_failures": len(create_failures),
        "create_failure_samples": create_failures[:3],
        "runs_with_loss_or_error": len(bad) + (args.runs - len(results)),
        "bad_samples": bad[:5],
        "ramp_s": round(ramp_end - t0, 2) if ramp_end != float("inf") else None,
        "all_live_s": round(first_end - ramp_end, 2) if ramp_end != float("inf") else None,
        "total_s": round(end - t0, 2),
        "delay_ms_all": stats(all_delays),
        "delay_ms_steady": stats(steady),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Runwright live-runs concurrency benchmark")
    add_common_args(parser)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=45.0)
    parser.add_argument("--create-concurrency", type=int, default=20)
    parser.add_argument("--quiet-wait", type=float, default=60.0)
    args = parser.parse_args(argv)
    pin_client(args.client_cpus)
    name = result_name(args, "concurrency")
    with stack(args, name) as st:
        quiet = wait_for_quiet(args.quiet_wait)
        cpu = CpuMeter(st.server.pid).start()
        result = asyncio.run(live_load(st, args))
        result["cpu_cores"] = cpu.stop()
        result["peak_rss_mib"] = round(st.rss.peak / 2**20, 1)
    result.update(
        machine_load_before=quiet, seconds=args.seconds, server_cpus=args.server_cpus,
        client_cpus=args.client_cpus, max_live_runs=args.max_live_runs,
    )  # fmt: skip
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
