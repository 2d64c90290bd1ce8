"""Cross-node stream latency: how long after an event is committed a stream on another
node delivers it (issue 11 item 2: 50 ms p50 / 250 ms p99).

Two ``runwright serve`` nodes on one database. Each run (scripted, ``--chunks`` deltas
``--gap-ms`` apart) is created on node A and read to its end on both nodes at once. The
node executing the run publishes each event to its own streams right after the commit, so
for every event the later of the two arrivals minus the earlier one is the cross-node delay
from commit to delivery (NOTIFY, the poke, the stream's read of ``run_events`` and the SSE
write), whichever node executes the run. Also reported: envelope ``ts`` to arrival on each
side, and whether both streams saw seq 1..n with the terminal event last.

    .venv/bin/python -m bench.cross_node --runs 100 --concurrency 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from bench import client
from bench.env import Server, free_port
from bench.stack import RESULTS, Stack, add_common_args, pin_client, result_name, stack


def _body(chunks: int, gap_ms: int) -> dict[str, Any]:
    script: list[dict[str, Any]] = [{"sleep_ms": 300}]
    script += [{"delta": f"chunk {i} ", "delay_ms": gap_ms} for i in range(chunks)]
    return {"input": "bench", "engine": "scripted", "script": script}


async def measure(st: Stack, other: Server, args: argparse.Namespace) -> dict[str, Any]:
    body = _body(args.chunks, args.gap_ms)
    lags: list[float] = []
    ts_local: list[float] = []
    ts_remote: list[float] = []
    failures: list[str] = []
    sem = asyncio.Semaphore(args.concurrency)
    async with client.session(st.server.url) as on_a, client.session(other.url) as on_b:

        async def one() -> None:
            async with sem:
                run_id = await client.create_run(on_a, st.tenancy, body)
                a, b = await asyncio.gather(
                    client.read_stream(on_a, st.tenancy, run_id, measure_delay=True),
                    client.read_stream(on_b, st.tenancy, run_id, measure_delay=True),
                )
            for res in (a, b):
                if res.error or not res.gap_free() or res.terminal_type is None:
                    failures.append(res.error or f"{run_id}: seqs {res.seqs[:5]}...")
                    return
            if a.seqs != b.seqs:
                failures.append(f"{run_id}: the nodes' streams differ")
                return
            for i in range(len(a.seqs)):
                early, late = sorted((a.received[i], b.received[i]))
                lags.append((late - early) * 1000)
                first, second = sorted((a.delays_ms[i], b.delays_ms[i]))
                ts_local.append(first)
                ts_remote.append(second)

        await asyncio.gather(*(one() for _ in range(args.runs)))

    return {
        "runs": args.runs,
        "events": len(lags),
        "failures": len(failures),
        "failure_samples": failures[:5],
        "cross_node_delay_ms": client.summary(lags),
        "ts_to_executing_node_stream_ms": client.summary(ts_local),
        "ts_to_other_node_stream_ms": client.summary(ts_remote),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Runwright cross-node stream latency")
    add_common_args(parser)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--chunks", type=int, default=20)
    parser.add_argument("--gap-ms", type=int, default=20)
    parser.add_argument("--other-cpus", default="1", help="taskset list for node B")
    args = parser.parse_args(argv)
    pin_client(args.client_cpus)
    name = result_name(args, "cross-node")
    with stack(args, name) as st:
        log = RESULTS / f"{name}.node-b.log"
        with Server(st.server.env, free_port(), args.other_cpus or None, log) as other:
            result = asyncio.run(measure(st, other, args))
    result.update(server_cpus=args.server_cpus, other_cpus=args.other_cpus,
                  client_cpus=args.client_cpus, chunks=args.chunks, gap_ms=args.gap_ms)  # fmt: skip
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
