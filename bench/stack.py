"""One benchmark's stack: fresh database, seeded tenancy, optional OpenAI stub, the server.

:func:`stack` is a context manager; everything it starts is stopped when it exits, on error
too (process groups, ``try/finally``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.env import (
    DEFAULT_PG,
    REPO,
    BenchEnv,
    RssSampler,
    Server,
    Tenancy,
    free_port,
    recreate_database,
    scratch_dir,
)
from runwright.client import Client

RESULTS = REPO / "bench" / "results"


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """Options every benchmark takes."""
    parser.add_argument("--pg", default=DEFAULT_PG, help="Postgres base DSN (no database)")
    parser.add_argument("--db", default="runwright_bench", help="database to (re)create")
    parser.add_argument(
        "--server-cpus", default="0", help="taskset list for the server ('' = none)"
    )
    parser.add_argument("--client-cpus", default="1", help="CPUs of this client ('' = none)")
    parser.add_argument("--max-live-runs", type=int, default=1500)
    parser.add_argument(
        "--server-repo", type=Path, default=REPO,
        help="run the server from this checkout (e.g. a git worktree of an older commit)",
    )  # fmt: skip
    parser.add_argument(
        "--gc-log", action="store_true",
        help="log the server's garbage collections (bench/diag/sitecustomize.py)",
    )  # fmt: skip
    parser.add_argument(
        "--gc-freeze-after", type=float, default=0.0, metavar="S",
        help="with --gc-log: gc.freeze() in the server S seconds after start (experiment)",
    )  # fmt: skip
    parser.add_argument("--tag", default="", help="suffix of the result file names")
    parser.add_argument(
        "--env", action="append", default=[], metavar="K=V", help="extra server environment"
    )


def result_name(args: argparse.Namespace, name: str) -> str:
    """``name`` plus the ``--tag`` suffix (results/<name>-<tag>.json)."""
    return f"{name}-{args.tag}" if args.tag else name


def pin_client(cpus: str) -> None:
    """Pin this (client) process to ``cpus`` (e.g. ``"1"``), when given."""
    if cpus:
        os.sched_setaffinity(0, {int(c) for c in cpus.split(",")})


@dataclass
class Stack:
    server: Server
    tenancy: Tenancy
    rss: RssSampler
    data_dir: Path
    model_url: str | None = None  # the OpenAI stub's base URL (native runs)


def create_app(base: str, tenancy: Tenancy, slug: str = "bench-app") -> str:
    """Create a benchmark app (with the blocking client: callers may already run a loop)."""
    with Client(base, tenancy.token, tenant_id=tenancy.tenant_id, timeout=30) as rw:
        return str(rw.create_app(f"Bench app {slug}", slug).id)


@contextlib.contextmanager
def _openai_stub(chunks: int) -> Iterator[int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.openai_stub", "--chunks", str(chunks)],
        stdout=subprocess.PIPE, text=True, cwd=REPO, start_new_session=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"openai stub did not start: {line!r}")
        yield int(line.split()[1])
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


@contextlib.contextmanager
def stack(
    args: argparse.Namespace, name: str, *, native_chunks: int | None = None
) -> Iterator[Stack]:
    """Start the whole stack for benchmark ``name``; native_chunks starts the OpenAI stub."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    dsn = recreate_database(args.pg, args.db)
    with contextlib.ExitStack() as stack_:
        data_dir = stack_.enter_context(scratch_dir(f"runwright-{name}-"))
        # The benchmarks load one tenant: its fair-share caps are lifted to the node's.
        extra = {
            "RUNWRIGHT_MAX_LIVE_RUNS": str(args.max_live_runs),
            "RUNWRIGHT_MAX_LIVE_RUNS_PER_TENANT": str(args.max_live_runs),
            "RUNWRIGHT_MAX_QUEUED_RUNS_PER_TENANT": "1000000",
            "RUNWRIGHT_MAX_STREAMS_PER_TENANT": "100000",
        }
        for item in args.env:
            key, _, value = item.partition("=")
            extra[key] = value
        if args.gc_log:
            extra["BENCH_GC_LOG"] = str(RESULTS / f"{name}.gc.txt")
            extra["PYTHONPATH"] = str(REPO / "bench" / "diag")
            if args.gc_freeze_after > 0:
                extra["BENCH_GC_FREEZE_AFTER"] = str(args.gc_freeze_after)
        env = BenchEnv(dsn, data_dir, extra, args.server_repo.resolve())
        tenancy = env.seed()
        model_url = None
        if native_chunks is not None:
            port = stack_.enter_context(_openai_stub(native_chunks))
            model_url = f"http://127.0.0.1:{port}/v1"
            tenancy.model_id = env.cli(
                "model", "add", "--global", "--name", "bench-model", "--provider", "openai",
                "--provider-model-id", "bench-model", "--base-url",
                model_url, "--default",
            )  # fmt: skip
        server = stack_.enter_context(
            Server(env, free_port(), args.server_cpus or None, RESULTS / f"{name}.server.log")
        )
        rss = RssSampler(server.pid).start()
        stack_.callback(rss.stop)

        tenancy.app_id = create_app(server.url, tenancy)
        yield Stack(server, tenancy, rss, data_dir, model_url)
