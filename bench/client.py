"""The load client's HTTP side (aiohttp): create runs, read their SSE streams.

Every read is bounded by a timeout; a stream is read until its terminal event. Timestamps
are ``time.time()`` (wall clock, comparable with the server's envelope ``ts`` on the same
machine) and ``time.perf_counter()`` for durations.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiohttp

from bench.env import Tenancy

TERMINAL = frozenset({"run.completed", "run.failed"})


def session(limit: int = 0, timeout: float = 120.0) -> aiohttp.ClientSession:
    """A client session with no connection cap (``limit=0``) and a total timeout."""
    connector = aiohttp.TCPConnector(limit=limit, force_close=False)
    return aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=timeout, sock_read=timeout)
    )


def runs_url(base: str, app_id: str) -> str:
    return f"{base}/admin/apps/{app_id}/coding-agent/runs"


async def create_run(
    http: aiohttp.ClientSession, base: str, tenancy: Tenancy, body: dict[str, Any]
) -> str:
    """POST a run; return its id (raises on any non-200)."""
    async with http.post(
        runs_url(base, tenancy.app_id), json=body, headers=tenancy.headers()
    ) as resp:
        data = await resp.json()
        if resp.status != 200:
            raise RuntimeError(f"create run: {resp.status} {data}")
        return str(data["run_id"])


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


def _ts(envelope: dict[str, Any]) -> float:
    return datetime.fromisoformat(envelope["ts"]).timestamp()


async def read_stream(
    http: aiohttp.ClientSession,
    base: str,
    tenancy: Tenancy,
    run_id: str,
    *,
    measure_delay: bool = False,
    read_timeout: float = 120.0,
) -> StreamResult:
    """Read a run's stream from the start to its terminal event."""
    result = StreamResult(run_id)
    url = f"{runs_url(base, tenancy.app_id)}/{run_id}/stream"
    try:
        async with http.get(
            url, headers=tenancy.headers(), timeout=aiohttp.ClientTimeout(total=read_timeout)
        ) as resp:
            if resp.status != 200:
                result.error = f"stream: {resp.status} {await resp.text()}"
                return result
            seq = 0
            async for raw in resp.content:
                line = raw.rstrip(b"\n")
                if line.startswith(b"id: "):
                    seq = int(line[4:])
                elif line.startswith(b"data: "):
                    now = time.perf_counter()
                    wall = time.time()
                    envelope = json.loads(line[6:])
                    kind = envelope["event"]
                    result.seqs.append(seq)
                    result.types.append(kind)
                    if measure_delay:
                        result.delays_ms.append((wall - _ts(envelope)) * 1000)
                        result.received.append(wall)
                    if kind == "assistant.delta" and result.first_delta_at is None:
                        result.first_delta_at = now
                    if kind in TERMINAL:
                        result.terminal_at = now
                        result.terminal_type = kind
                        break
    except (aiohttp.ClientError, TimeoutError) as exc:
        result.error = f"stream: {exc!r}"
    return result


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (``nan`` for no values)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(pct / 100 * len(ordered))))
    return ordered[rank - 1]
