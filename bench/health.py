"""Health under load: ``/livez`` and ``/readyz`` latency while 1,500 runs are created.

The load: ``--runs`` creates of a short scripted run (at most ``--create-concurrency`` in
flight; the runs execute in the background, as in production). Meanwhile a probe process
with its own blocking HTTP client (its own connections and interpreter: neither the load's
event loop nor its GIL delays it) asks ``/livez``, ``/readyz`` and ``/healthz`` in turn every
``--probe-interval-ms`` and records each answer's status and latency. Reported per path:
p50 / p99 / max in ms and the answers that were not 200. The target (issue 10, item 6):
p99 under 50 ms for ``/livez`` and ``/readyz``.

    .venv/bin/python -m bench.health --runs 1500
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import sys
import time
from typing import Any

import httpx

from bench import client
from bench.env import CpuMeter, wait_for_quiet
from bench.stack import RESULTS, Stack, add_common_args, pin_client, result_name, stack

PATHS = ("/livez", "/readyz", "/healthz")


def _probe(
    base: str, interval: float, max_probes: int, cpus: set[int], halt: Any, out: Any
) -> None:
    """The prober's process, on ``cpus``: ask the health paths in turn until ``halt`` is
    set, then put ``(samples, not_ok)`` on ``out``."""
    # Forked from the pinned load client: without this it would queue for the client's
    # core, and that wait would count as the server's latency.
    os.sched_setaffinity(0, cpus)
    samples: dict[str, list[float]] = {p: [] for p in PATHS}
    not_ok: dict[str, list[int]] = {p: [] for p in PATHS}
    with httpx.Client(base_url=base, timeout=60) as http:
        for n in range(max_probes):
            if halt.is_set():
                break
            path = PATHS[n % len(PATHS)]
            start = time.perf_counter()
            try:
                status = http.get(path).status_code
            except httpx.HTTPError:
                status = 0
            samples[path].append((time.perf_counter() - start) * 1000)
            if status != 200:
                not_ok[path].append(status)
            halt.wait(interval)
    out.put((samples, not_ok))


class Prober:
    """Asks the health paths in turn until stopped, from its own process (a thread of the
    load client would wait for that client's GIL, and its waits would count as the
    server's latency); bounded by ``max_probes``."""

    def __init__(
        self, base: str, interval: float, cpus: set[int], max_probes: int = 200_000
    ) -> None:
        ctx = multiprocessing.get_context("fork")  # started before any event loop runs
        self._halt = ctx.Event()
        self._out = ctx.Queue()
        self._proc = ctx.Process(
            target=_probe, args=(base, interval, max_probes, cpus, self._halt, self._out),
            name="health-prober", daemon=True,
        )  # fmt: skip
        self.samples: dict[str, list[float]] = {p: [] for p in PATHS}
        self.not_ok: dict[str, list[int]] = {p: [] for p in PATHS}

    def start(self) -> None:
        self._proc.start()

    def stop(self) -> None:
        self._halt.set()
        self.samples, self.not_ok = self._out.get(timeout=60)
        self._proc.join(30)


async def create_load(st: Stack, args: argparse.Namespace) -> dict[str, Any]:
    body = {"input": "bench", "engine": "scripted",
            "script": [{"delta": "a "}, {"delta": "b"}]}  # fmt: skip
    gate = asyncio.Semaphore(args.create_concurrency)
    failures: list[str] = []
    timeout = args.runs / 5 + 120  # the whole load is bounded

    async with client.session(st.server.url, request_timeout=timeout) as http:

        async def one() -> None:
            async with gate:
                try:
                    await client.create_run(http, st.tenancy, body)
                except Exception as exc:  # noqa: BLE001 - counted, reported
                    failures.append(repr(exc))

        t0 = time.perf_counter()
        tasks = [asyncio.create_task(one()) for _ in range(args.runs)]
        await asyncio.wait(tasks, timeout=timeout)
        for task in tasks:
            task.cancel()
        elapsed = time.perf_counter() - t0
    return {
        "runs": args.runs,
        "create_failures": len(failures),
        "create_failure_samples": failures[:3],
        "create_s": round(elapsed, 2),
        "creates_per_s": round(args.runs / elapsed, 1),
    }


def stats(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": round(client.percentile(values, 50), 2),
        "p99": round(client.percentile(values, 99), 2),
        "max": round(max(values, default=float("nan")), 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Runwright health latency under create load")
    add_common_args(parser)
    parser.add_argument("--runs", type=int, default=1500)
    parser.add_argument("--create-concurrency", type=int, default=100)
    parser.add_argument("--probe-interval-ms", type=float, default=10.0)
    parser.add_argument("--quiet-wait", type=float, default=60.0)
    parser.add_argument(
        "--prober-cpus", default="",
        help="CPUs of the prober ('' = all: an orchestrator's probe does not share the load "
        "client's core)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    prober_cpus = (
        {int(c) for c in args.prober_cpus.split(",")}
        if args.prober_cpus
        else os.sched_getaffinity(0)
    )
    pin_client(args.client_cpus)
    name = result_name(args, "health")
    with stack(args, name) as st:
        quiet = wait_for_quiet(args.quiet_wait)
        cpu = CpuMeter(st.server.pid).start()
        prober = Prober(st.server.url, args.probe_interval_ms / 1000, prober_cpus)
        prober.start()
        try:
            result = asyncio.run(create_load(st, args))
        finally:
            prober.stop()
        result["cpu_cores"] = cpu.stop()
    result["latency_ms"] = {path: stats(prober.samples[path]) for path in PATHS}
    result["not_200"] = {path: len(prober.not_ok[path]) for path in PATHS}
    result.update(
        machine_load_before=quiet, create_concurrency=args.create_concurrency,
        probe_interval_ms=args.probe_interval_ms, server_cpus=args.server_cpus,
        client_cpus=args.client_cpus, prober_cpus=sorted(prober_cpus),
    )  # fmt: skip
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
