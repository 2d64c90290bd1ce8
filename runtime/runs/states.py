"""The run state machine: the one transition table (docs/design.md section 3).

``queued -> running -> completed | failed | cancelled | paused``, ``paused -> queued``.
Every status write in storage is ``UPDATE ... WHERE status = ANY(<sources>)`` with the
sources this table allows, so a terminal status is never overwritten.
"""

from __future__ import annotations

from typing import Final

QUEUED: Final = "queued"
RUNNING: Final = "running"
COMPLETED: Final = "completed"
FAILED: Final = "failed"
CANCELLED: Final = "cancelled"
PAUSED: Final = "paused"

STATUSES: Final = (QUEUED, RUNNING, COMPLETED, FAILED, CANCELLED, PAUSED)
TERMINAL: Final = frozenset({COMPLETED, FAILED, CANCELLED})
#: A run that is waiting to execute or executing (its stream may still grow).
ACTIVE: Final = frozenset({QUEUED, RUNNING})

# target status -> statuses a run may move to it from
TRANSITIONS: Final[dict[str, frozenset[str]]] = {
    RUNNING: frozenset({QUEUED}),
    COMPLETED: frozenset({RUNNING}),
    PAUSED: frozenset({RUNNING}),
    # queued: resume of a paused run, or the "requeue" restart policy for a running one
    QUEUED: frozenset({PAUSED, RUNNING}),
    # cancel works before start, while running and while paused (docs/design.md 8.3)
    CANCELLED: frozenset({QUEUED, RUNNING, PAUSED}),
    # failure: engine error, unconfirmed cancel, crash limit, process restart
    FAILED: frozenset({QUEUED, RUNNING, PAUSED}),
}


def sources(target: str, *, only: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """The statuses a run may leave for ``target`` (sorted), passed to every
    status-changing query as its ``status = ANY($n::text[])`` condition.

    Args:
        target: the status to move to.
        only: narrow the table's sources for one purpose (resume moves ``paused -> queued``
            only); each must be allowed by the table.

    Raises:
        KeyError: ``target`` is not a status any transition leads to.
        ValueError: ``only`` names a source the table does not allow.
    """
    allowed = TRANSITIONS[target]
    if only is None:
        return tuple(sorted(allowed))
    if not set(only) <= allowed:
        raise ValueError(f"{sorted(set(only) - allowed)} -> {target} is not a transition")
    return tuple(sorted(only))


def is_terminal(status: str) -> bool:
    """Whether ``status`` is final (completed, failed or cancelled)."""
    return status in TERMINAL
