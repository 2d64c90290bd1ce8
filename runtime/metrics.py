"""Prometheus metrics of one app instance: one registry, the metric objects, and the few
calls the runtime makes to move them.

:class:`Metrics` is built by ``build_services`` (one per app, never at import: tests build
several apps in one process) and handed to what records: the run service and its actors,
the event writer, the native engine, the command tools. ``GET /metrics`` renders
:attr:`Metrics.registry`.

Cheap on the hot path: no label holds a run id or anything a tenant or a model chooses,
except ``tenant_id`` on the queue-depth gauge (one series per tenant with queued runs) and
``command`` (one per operator-allowlisted command). The writer observes once per batch,
not per event; gauges that mirror a component's state are read when scraped.

Sources (docs/design.md section 4 for the writer, 2 for actors and slots, contract 3 for events).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["ModelCall", "Metrics", "RunCount"]

_DURATION_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
_FIRST_DELTA_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_MODEL_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_COMMAND_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
_LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000)

RunCount = tuple[str, str, uuid.UUID, int]
"""One row of the database's live-run counts: ``(status, engine, tenant_id, count)``."""


class _DatabaseView(Collector):
    """Gauges read from Postgres at scrape time (the whole cluster, not one process):
    ``runwright_runs{status, engine}`` for queued and running runs and
    ``runwright_queue_depth{tenant_id}`` for tenants with queued runs and
    ``runwright_runs_waiting``, every queued run (the run queue is shared by all nodes)."""

    def __init__(self) -> None:
        self.rows: list[RunCount] | None = None

    def collect(self) -> Iterator[Metric]:
        rows = self.rows
        if rows is None:  # never read, or the last read failed: no stale numbers
            return
        runs = GaugeMetricFamily(
            "runwright_runs",
            "Runs in the database by status (queued, running) and engine, all nodes.",
            labels=["status", "engine"],
        )
        by_status: dict[tuple[str, str], int] = {}
        queued: dict[str, int] = {}
        for status, engine, tenant_id, count in rows:
            by_status[(status, engine)] = by_status.get((status, engine), 0) + count
            if status == "queued":
                queued[str(tenant_id)] = queued.get(str(tenant_id), 0) + count
        for (status, engine), count in sorted(by_status.items()):
            runs.add_metric([status, engine], count)
        depth = GaugeMetricFamily(
            "runwright_queue_depth",
            "Queued runs per tenant (tenants with none are not listed), all nodes.",
            labels=["tenant_id"],
        )
        for tenant, queued_count in sorted(queued.items()):
            depth.add_metric([tenant], queued_count)
        waiting = GaugeMetricFamily(
            "runwright_runs_waiting",
            "Queued runs waiting for an execution slot on any node, all nodes.",
            value=sum(queued.values()),
        )
        yield runs
        yield depth
        yield waiting


class ModelCall:
    """Times one streamed model request (from :meth:`Metrics.model_call`).

    Call :meth:`item` for every streamed item (the first one stops the first-token clock),
    then :meth:`ok` at the end of the stream or
    :meth:`failed` with the error kind, and :meth:`close` in a ``finally``: a request that
    neither finished nor failed (the run was cancelled mid-stream) counts as ``cancelled``.
    The duration is recorded once, at the first of these.
    """

    __slots__ = ("_metrics", "_start", "_first", "_recorded")

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._start = time.perf_counter()
        self._first = False
        self._recorded = False

    def item(self, item: object) -> None:
        """Note one streamed item (:class:`runtime.model_client.ModelEvent`)."""
        if not self._first:
            self._first = True
            self._metrics.model_first_token.observe(time.perf_counter() - self._start)

    def ok(self) -> None:
        """The stream ended normally."""
        self._record("ok")

    def failed(self, kind: str) -> None:
        """The request failed with a :class:`runtime.model_client.ModelError` of ``kind``."""
        if not self._recorded:
            self._metrics.model_errors.labels(kind).inc()
        self._record("error")

    def close(self) -> None:
        """End of the request's block: ``cancelled`` unless already recorded."""
        self._record("cancelled")

    def _record(self, outcome: str) -> None:
        if not self._recorded:
            self._recorded = True
            elapsed = time.perf_counter() - self._start
            self._metrics.model_request.labels(outcome).observe(elapsed)


class Metrics:
    """The metrics of one app instance, in their own registry.

    Attributes:
        registry: what ``GET /metrics`` renders (process and platform collectors included).
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        self._database = _DatabaseView()
        r.register(self._database)
        self.database_up = Gauge(
            "runwright_database_up", "1 when the last scrape could read the database.",
            registry=r,
        )  # fmt: skip
        # ---- runs (this process) ----
        self.runs_created = Counter(
            "runwright_runs_created", "Runs created through this process.", ["engine"],
            registry=r,
        )  # fmt: skip
        self.runs_finished = Counter(
            "runwright_runs_finished",
            "Runs this process ended, by final status (completed, failed, cancelled, paused).",
            ["engine", "status"],
            registry=r,
        )
        self.run_duration = Histogram(
            "runwright_run_duration_seconds",
            "From a run's creation to the status this process wrote at its end.",
            ["engine", "status"],
            buckets=_DURATION_BUCKETS,
            registry=r,
        )
        self.first_delta = Histogram(
            "runwright_run_first_delta_seconds",
            "From a run's creation to its first assistant text from the engine.",
            ["engine"],
            buckets=_FIRST_DELTA_BUCKETS,
            registry=r,
        )
        # ---- actors and slots (the Supervisor's view) ----
        self.run_actors = Gauge(
            "runwright_run_actors", "Run actors (threads) alive in this process.", registry=r
        )
        self.runs_executing = Gauge(
            "runwright_runs_executing", "Execution slots in use in this process.", registry=r
        )
        # ---- events ----
        self.writer_batch = Histogram(
            "runwright_event_writer_batch_size", "Events per database write of the writer.",
            buckets=_BATCH_BUCKETS, registry=r,
        )  # fmt: skip
        self.writer_lag = Histogram(
            "runwright_event_writer_lag_seconds",
            "Age of a batch's oldest event when the batch is persisted and published.",
            buckets=_LAG_BUCKETS,
            registry=r,
        )
        self.writer_pending = Gauge(
            "runwright_event_writer_pending", "Events accepted but not yet persisted.",
            registry=r,
        )  # fmt: skip
        self.sse_subscribers = Gauge(
            "runwright_sse_subscribers", "Open event streams (SSE subscribers) in this process.",
            registry=r,
        )  # fmt: skip
        # ---- the model and the tools ----
        self.model_request = Histogram(
            "runwright_model_request_seconds",
            "Duration of a streamed chat-completions request, by outcome (ok, error, cancelled).",
            ["outcome"],
            buckets=_MODEL_BUCKETS,
            registry=r,
        )
        self.model_first_token = Histogram(
            "runwright_model_first_token_seconds",
            "From sending a chat-completions request to its first streamed item.",
            buckets=_MODEL_BUCKETS,
            registry=r,
        )
        self.model_errors = Counter(
            "runwright_model_errors",
            "Failed model requests by kind (connection, timeout, status, protocol, config).",
            ["kind"],
            registry=r,
        )
        self.model_tokens = Counter(
            "runwright_model_tokens",
            "Tokens the model reported using (prompt, completion); only endpoints that send "
            "usage in streams count.",
            ["kind"],
            registry=r,
        )
        self.command_duration = Histogram(
            "runwright_command_duration_seconds",
            "Sandboxed command durations by allowlisted command and outcome (ok, failed, timeout).",
            ["command", "outcome"],
            buckets=_COMMAND_BUCKETS,
            registry=r,
        )

    # ---- wiring: gauges that mirror a component ---------------------------------------

    def watch(self, gauge: Gauge, read: Callable[[], float]) -> None:
        """Make ``gauge`` read ``read()`` at scrape time (e.g. the broker's subscriber
        count): nothing on the hot path."""
        gauge.set_function(read)

    def set_database_view(self, rows: Iterable[RunCount] | None) -> None:
        """Store the live-run counts read for this scrape; None when the read failed (the
        database gauges are then left out and ``runwright_database_up`` is 0)."""
        self._database.rows = None if rows is None else list(rows)
        self.database_up.set(0 if rows is None else 1)

    # ---- instrumentation points --------------------------------------------------------

    def run_created(self, engine: str) -> None:
        """A run was accepted (``POST .../runs``)."""
        self.runs_created.labels(engine).inc()

    def run_finished(self, row: Mapping[str, Any]) -> None:
        """This process wrote a run's final status (the run row after the write)."""
        engine, status = row["execution_engine"], row["status"]
        self.runs_finished.labels(engine, status).inc()
        self.run_duration.labels(engine, status).observe(_age(row["created_at"]))

    def run_first_delta(self, row: Mapping[str, Any]) -> None:
        """The engine produced the run's first assistant text (once per actor)."""
        self.first_delta.labels(row["execution_engine"]).observe(_age(row["created_at"]))

    def actors(self, *, alive: int, executing: int) -> None:
        """The Supervisor's counts after it handled a message."""
        self.run_actors.set(alive)
        self.runs_executing.set(executing)

    def events_written(self, count: int, oldest: datetime) -> None:
        """The writer persisted (and is publishing) ``count`` events, the oldest made at
        ``oldest``."""
        self.writer_batch.observe(count)
        self.writer_lag.observe(_age(oldest))

    def model_call(self) -> ModelCall:
        """A timer for one model request (see :class:`ModelCall`)."""
        return ModelCall(self)

    def tokens(self, prompt: int | None, completion: int | None) -> None:
        """Count one model call's reported tokens (None: not reported). Called by the run's
        actor when it records the call (any engine), so the counter and the runs' usage
        agree."""
        for kind, value in (("prompt", prompt), ("completion", completion)):
            if value is not None and value > 0:
                self.model_tokens.labels(kind).inc(value)

    def command(self, command: str, seconds: float, *, code: int, timed_out: bool) -> None:
        """A sandboxed command ended (``command`` is the allowlisted command line)."""
        outcome = "timeout" if timed_out else ("ok" if code == 0 else "failed")
        self.command_duration.labels(command, outcome).observe(seconds)


def _age(since: datetime) -> float:
    """Seconds from ``since`` (timezone-aware) to now, never negative."""
    return max(0.0, (datetime.now(UTC) - since).total_seconds())
