"""The run state machine: the one transition table (DESIGN.md section 3).

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

# target status -> statuses a run may move to it from
TRANSITIONS: Final[dict[str, frozenset[str]]] = {
    RUNNING: frozenset({QUEUED}),
    COMPLETED: frozenset({RUNNING}),
    PAUSED: frozenset({RUNNING}),
    # queued: resume of a paused run, or the "requeue" restart policy for a running one
    QUEUED: frozenset({PAUSED, RUNNING}),
    # cancel works before start, while running and while paused (DESIGN.md 8.3)
    CANCELLED: frozenset({QUEUED, RUNNING, PAUSED}),
    # failure: engine error, unconfirmed cancel, crash limit, process restart
    FAILED: frozenset({QUEUED, RUNNING, PAUSED}),
}


def sources(target: str) -> tuple[str, ...]:
    """The statuses a run may leave for ``target`` (sorted, for SQL ``ANY``).

    Raises:
        KeyError: ``target`` is not a status any transition leads to.
    """
    return tuple(sorted(TRANSITIONS[target]))


def is_terminal(status: str) -> bool:
    return status in TERMINAL
