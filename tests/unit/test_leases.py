"""Which running runs a starting process may reconcile (docs/design.md 8.12)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta

from runtime.runs.leases import dead_local_owner, default_node_id, is_orphaned

NOW = datetime(2026, 11, 30, tzinfo=UTC)
LATER = NOW + timedelta(seconds=20)
HOST = socket.gethostname()


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return int(proc.stdout)


def test_default_node_id_names_host_and_process():
    assert default_node_id() == f"{HOST}:{os.getpid()}"


def test_a_live_process_keeps_its_runs():
    live = f"{HOST}:{os.getppid()}"
    assert not is_orphaned(live, LATER, node_id="me", now=NOW)
    assert not is_orphaned("other-host:1", LATER, node_id="me", now=NOW)


def test_orphans_are_recognised():
    assert is_orphaned(None, None, node_id="me", now=NOW)
    assert is_orphaned("me", LATER, node_id="me", now=NOW)  # our own name, from a past life
    assert is_orphaned("other-host:1", NOW - timedelta(seconds=1), node_id="me", now=NOW)
    assert is_orphaned(f"{HOST}:{_dead_pid()}", LATER, node_id="me", now=NOW)


def test_dead_local_owner_needs_this_host_and_a_pid():
    assert not dead_local_owner("explicit-name")
    assert not dead_local_owner(f"{HOST}:{os.getpid()}")
    assert not dead_local_owner(f"elsewhere:{_dead_pid()}")


def test_a_node_whose_heartbeat_lapsed_is_dead_before_its_lease_lapses():
    """docs/design.md 9: node liveness is its heartbeat; the 30 s lease is only the
    fallback for an owner without a heartbeat row."""
    fresh, stale = NOW - timedelta(seconds=1), NOW - timedelta(seconds=4)
    beat = {"node_id": "me", "now": NOW, "dead_after": 3.0}
    assert not is_orphaned("other-host:1", LATER, owner_heartbeat_at=fresh, **beat)
    assert is_orphaned("other-host:1", LATER, owner_heartbeat_at=stale, **beat)
    # no heartbeat row: only the lease counts
    assert not is_orphaned("other-host:1", LATER, owner_heartbeat_at=None, **beat)
    # heartbeats ignored when no threshold is given
    assert not is_orphaned("other-host:1", LATER, node_id="me", now=NOW, owner_heartbeat_at=stale)
