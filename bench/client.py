"""The load client's HTTP side, on :mod:`runwright.client` (httpx + httpx-sse): create runs,
read their SSE streams.

A :class:`Pool` holds one ``AsyncClient`` per token and tenant (the benchmarks'
tenancies), with no bound on connections so that every live stream has its own. The
throughput benchmarks give each worker a pool of its own (httpcore's cost per request grows
with the connections of its pool). Every read is bounded by a timeout; a stream is read
until its terminal event. Timestamps are ``time.time()`` (wall clock, comparable with the
server's envelope ``ts`` on the same machine) and ``time.perf_counter()`` for durations.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.env import Tenancy
from runwright.client import AsyncClient, RetryPolicy, RunwrightError
from runwright.client._core import DEFAULT_LIMITS, KEEPALIVE_EXPIRY

# A benchmark reports failures instead of hiding them: no retries of calls, and a stream
# gives up after one reconnect that brings nothing (a reconnect that does is still made).
NO_RETRY = RetryPolicy(attempts=1)
# No bound on connections, but on idle ones, as the client's default: httpcore polls every
# idle connection's socket on each request, so unbounded idle connections in a pool shared
# by many streams (each read to its end goes back to the pool) cost more than they save.
LIMITS = httpx.Limits(
    max_connections=None,
    max_keepalive_connections=DEFAULT_LIMITS.max_keepalive_connections,
    keepalive_expiry=KEEPALIVE_EXPIRY,
)


class Pool:
    """The benchmark's API clients, one per (token, tenant)."""

    def __init__(self, base: str, timeout: float) -> None:
        self._base = base
        self._timeout = timeout
        self._clients: dict[tuple[str, str], AsyncClient] = {}

    def client(self, tenancy: Tenancy) -> AsyncClient:
        """The client acting as ``tenancy``'s user in its tenant."""
        key = (tenancy.token, tenancy.tenant_id)
        if key not in self._clients:
            self._clients[key] = AsyncClient(
                self._base, tenancy.token, tenant_id=tenancy.tenant_id, timeout=self._timeout,
                retry=NO_RETRY,
                limits=LIMITS,
            )  # fmt: skip
        return self._clients[key]

    async def close(self) -> None:
        for rw in self._clients.values():
            await rw.close()


@contextlib.asynccontextmanager
async def session(base: str, request_timeout: float = 120.0) -> AsyncIterator[Pool]:
    """A :class:`Pool` for the server at ``base``, closed on exit."""
    pool = Pool(base, request_timeout)
    try:
        yield pool
    finally:
        await pool.close()


async def create_run(pool: Pool, tenancy: Tenancy, body: dict[str, Any]) -> str:
    """Create a run in ``tenancy.app_id``; return its id.

    Raises:
        runwright.client.RunwrightError: any error answer or transport failure.
    """
    options = {k: v for k, v in body.items() if k != "input"}
    run = await pool.client(tenancy).create_run(tenancy.app_id, body["input"], **options)
    return str(run.run_id)


@dataclass
class StreamResult:
    """What one SSE read saw."""

    run_id: str
    seqs: list[int] = field(default_factory=list)
    types: list[str] = field(default_factory=list)
    first_delta_at: float | None = None  # perf_counter
    terminal_at: float | None = None  # perf_counter
    terminal_type: str | None = None
    delays_ms: list[float] = field(default_factory=list)  # receive wall time - envelope ts
    received: list[float] = field(default_factory=list)  # receive wall times (with delays_ms)
    error: str | None = None

    def gap_free(self) -> bool:
        """Seqs are exactly 1..n (no loss, no duplicate, in order)."""
        return self.seqs == list(range(1, len(self.seqs) + 1))


async def read_stream(
    pool: Pool,
    tenancy: Tenancy,
    run_id: str,
    *,
    measure_delay: bool = False,
    read_timeout: float = 120.0,
) -> StreamResult:
    """Read a run's stream from the start to its terminal event (at most ``read_timeout``
    seconds in all)."""
    result = StreamResult(run_id)

    async def consume() -> None:
        stream = pool.client(tenancy).stream(tenancy.app_id, run_id)
        async with contextlib.aclosing(stream):
            async for event in stream:
                now = time.perf_counter()
                result.seqs.append(event.seq)
                result.types.append(event.event)
                if measure_delay:
                    wall = time.time()
                    result.delays_ms.append((wall - event.ts.timestamp()) * 1000)
                    result.received.append(wall)
                if event.event == "assistant.delta" and result.first_delta_at is None:
                    result.first_delta_at = now
                if event.terminal:
                    result.terminal_at = now
                    result.terminal_type = event.event

    try:
        await asyncio.wait_for(consume(), read_timeout)
    except (RunwrightError, TimeoutError) as exc:
        result.error = f"stream: {exc!r}"
    return result


@dataclass
class Budget:
    """A run budget shared by a benchmark's workers: at most ``runs`` runs are started,
    and none once ``deadline`` (``time.perf_counter()``) has passed."""

    runs: int
    deadline: float
    started: int = 0

    def take(self) -> bool:
        """Start one more run if the budget allows it (True), or not (False)."""
        if self.started >= self.runs or time.perf_counter() >= self.deadline:
            return False
        self.started += 1
        return True


async def create_and_read(
    pool: Pool, tenancy: Tenancy, body: dict[str, Any], budget: Budget, failures: list[str]
) -> AsyncIterator[tuple[float, StreamResult]]:
    """One worker's loop: while ``budget`` allows, create a run and read its stream to the
    end (60 s at most); yield ``(perf_counter at the create, what the stream saw)``. A create
    that fails is appended to ``failures`` (its ``repr``) and yields nothing."""
    while budget.take():
        t0 = time.perf_counter()
        try:
            run_id = await create_run(pool, tenancy, body)
        except Exception as exc:  # noqa: BLE001 - counted, reported
            failures.append(repr(exc))
            continue
        yield t0, await read_stream(pool, tenancy, run_id, read_timeout=60)


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (``nan`` for no values)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(pct / 100 * len(ordered))))
    return ordered[rank - 1]


def summary(values: list[float]) -> dict[str, float]:
    """``{"p50", "p99", "max"}`` of ``values``, rounded to 0.01 (``nan`` for none)."""
    return {
        "p50": round(percentile(values, 50), 2),
        "p99": round(percentile(values, 99), 2),
        "max": round(max(values, default=float("nan")), 2),
    }
