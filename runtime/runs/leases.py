"""Who owns a running run: lease owners are node ids, by default ``<host>:<pid>``.

At start-up a process reconciles the runs it can prove are orphaned (docs/design.md 8.12):
those with no owner, those owned by its own node id (set explicitly and reused across a
restart), those whose lease lapsed, and those owned by a ``<host>:<pid>`` on this host whose
process is gone. A live process's runs are never touched, so several processes may share
one database (or one data directory) without failing each other's runs.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime


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
    owner: str | None, lease_expires_at: datetime | None, *, node_id: str, now: datetime
) -> bool:
    """Whether a ``running`` run with this lease may be reconciled by ``node_id``."""
    if owner is None or lease_expires_at is None or owner == node_id:
        return True
    return lease_expires_at < now or dead_local_owner(owner)
