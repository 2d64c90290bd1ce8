"""Postgres's side of a benchmark window: its CPU, its statements and its row updates.

:class:`PgMeter` measures, over the same window as :class:`bench.env.CpuMeter`:

- the CPU of the one cluster ``--pg`` names (its postmaster's process tree, reaped
  backends included), not every Postgres on the machine: tests of other people on the
  machine's own cluster are not counted when the benchmark uses a private cluster;
- with the ``pg_stat_statements`` extension in the cluster's ``postgres`` database
  (``shared_preload_libraries=pg_stat_statements``, then ``CREATE EXTENSION``), the
  top-level statements of the benchmark's database: calls, execution and planning time
  per query (planning with ``pg_stat_statements.track_planning = on``), and round trips
  (calls, less the statements sent in the same simple query as a ``BEGIN``: ``SET LOCAL``
  and the claim lock, :meth:`storage.database.Database.transaction`);
- ``pg_stat_user_tables``: row updates of ``agent_runs`` and how many were HOT (no index
  entry written).

Counts per run do not depend on the machine's load much (batching does a little); times do.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import psutil

from bench.env import tree_cpu

# Statements a transaction sends in one simple query with its BEGIN (no round trip of their own).
_WITH_BEGIN = ("SET LOCAL ", "SELECT pg_advisory_xact_lock(")


def _psql(dsn: str, sql: str) -> list[list[str]]:
    out = subprocess.run(
        ["psql", dsn, "-AtF", "\t", "-c", sql],
        check=True, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    return [line.split("\t") for line in out.stdout.splitlines() if line]


def postmaster_pid(pg: str) -> int | None:
    """The postmaster of the cluster at ``pg`` (from ``postmaster.pid`` in its data
    directory), or None when it is not readable from here (another machine, permissions)."""
    try:
        data = _psql(f"{pg}/postgres", "show data_directory")[0][0]
        pid = int((Path(data) / "postmaster.pid").read_text().split("\n", 1)[0])
        psutil.Process(pid)
    except (OSError, ValueError, IndexError, psutil.Error, subprocess.SubprocessError):
        return None
    return pid


class PgMeter:
    """Postgres CPU, statements and ``agent_runs`` updates of ``db`` over a window.

    Args:
        pg: the base DSN (no database), as ``--pg``.
        db: the benchmark's database.
    """

    def __init__(self, pg: str, db: str) -> None:
        self._admin = f"{pg}/postgres"
        self._db = f"{pg}/{db}"
        self._dbname = db
        self._postmaster = postmaster_pid(pg)
        self._statements = bool(
            _psql(
                self._admin,
                "SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements'",
            )[0][0]
            != "0"  # fmt: skip
        )
        self._cpu0 = 0.0
        self._upd0 = (0, 0)

    def _updates(self) -> tuple[int, int]:
        rows = _psql(self._db, "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables "
                     "WHERE relname = 'agent_runs'")  # fmt: skip
        return (int(rows[0][0]), int(rows[0][1])) if rows else (0, 0)

    def start(self) -> PgMeter:
        if self._statements:
            _psql(self._admin, "SELECT pg_stat_statements_reset()")
        time.sleep(1.2)  # table counters reach the shared stats within a second (PG 15)
        self._upd0 = self._updates()
        self._cpu0 = tree_cpu(self._postmaster) if self._postmaster else 0.0
        return self

    def stop(self, runs: int) -> dict[str, Any]:
        """What the window cost, per run of ``runs`` (the runs created in it)."""
        cpu = (tree_cpu(self._postmaster) - self._cpu0) if self._postmaster else None
        time.sleep(1.2)
        upd, hot = (a - b for a, b in zip(self._updates(), self._upd0, strict=True))
        per = max(1, runs)
        out: dict[str, Any] = {
            "postgres_cpu_ms_per_run": round(1000 * cpu / per, 3) if cpu is not None else None,
            "agent_runs_updates_per_run": round(upd / per, 3),
            "agent_runs_hot_ratio": round(hot / upd, 3) if upd else None,
        }
        if not self._statements:
            return out
        rows = _psql(
            self._admin,
            "SELECT s.calls, s.total_exec_time, s.rows, s.plans, s.total_plan_time, "
            "regexp_replace(left(s.query, 160), '\\s+', ' ', 'g') "
            "FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid "
            f"WHERE d.datname = '{self._dbname}' AND s.toplevel ORDER BY s.calls DESC",
        )
        calls = sum(int(r[0]) for r in rows)
        riding = sum(int(r[0]) for r in rows if r[5].startswith(_WITH_BEGIN))
        out.update(
            statements_per_run=round(calls / per, 3),
            # Postgres's own time per run in executing and planning these statements (ms;
            # planning only with pg_stat_statements.track_planning on)
            exec_ms_per_run=round(sum(float(r[1]) for r in rows) / per, 3),
            plan_ms_per_run=round(sum(float(r[4]) for r in rows) / per, 3),
            round_trips_per_run=round((calls - riding) / per, 3),
            statements=[
                {
                    "calls_per_run": round(int(c) / per, 3),
                    "mean_ms": round(float(t) / int(c), 3),
                    "rows_per_call": round(int(n) / int(c), 2),
                    "plans_per_call": round(int(pl) / int(c), 3),
                    "mean_plan_ms": round(float(pt) / int(pl), 3) if int(pl) else 0.0,
                    "query": q,
                }
                for c, t, n, pl, pt, q in rows
                if int(c) / per >= 0.005
            ],  # fmt: skip
        )
        return out
