"""Who owns a running run: lease owners are node ids, by default ``<host>:<pid>``.

A process reconciles the runs it can prove are orphaned (docs/design.md 8.12, docs/design.md 9):
those with no owner, those owned by its own node id (set explicitly and reused across a
restart), those whose lease lapsed, those whose owner's node heartbeat (``runwright_nodes``)
is older than ``RUNWRIGHT_NODE_DEAD_SECONDS``, and those owned by a ``<host>:<pid>`` on this
host whose process is gone. At start-up it checks every running run; afterwards its node
heartbeat task asks the database for the same (``runs_list_orphaned``) every beat. A live
process's runs are never touched, so several processes may share one database (or one
data directory) without failing each other's runs.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta


def default_node_id() -> str:
    """``<host>:<pid>``: unique per live process on a host."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def dead_local_owner(owner: str, host: str | None = None) -> bool:
    """True when ``owner`` is ``<this host>:<pid>`` and no process has that pid."""
    name, _, pid = owner.rpartition(":")
    if name != (host or socket.gethostname()) or not pid.isdigit():
        return False
    return int(pid) != os.getpid() and not _pid_alive(int(pid))


def is_orphaned(
    owner: str | None,
    lease_expires_at: datetime | None,
    *,
    node_id: str,
    now: datetime,
    owner_heartbeat_at: datetime | None = None,
    dead_after: float | None = None,
) -> bool:
    """Whether a ``running`` run with this lease may be reconciled by ``node_id``.

    Args:
        owner, lease_expires_at: the run's lease.
        node_id: the node asking.
        now: the database's clock (every time here is read from it).
        owner_heartbeat_at: the owner's last node heartbeat (None: it has no node row,
            and only its lease counts).
        dead_after: seconds of silence after which a node is dead (None: ignore beats).
    """
    if owner is None or lease_expires_at is None or owner == node_id:
        return True
    if (
        owner_heartbeat_at is not None
        and dead_after is not None
        and owner_heartbeat_at < now - timedelta(seconds=dead_after)
    ):
        return True
    return lease_expires_at < now or dead_local_owner(owner)
