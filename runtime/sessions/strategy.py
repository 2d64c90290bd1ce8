"""What a run create does while a run of its session is active (``multitask_strategy``).

The strategies (issue 12 item 1; LangGraph Agent Server's ``multitask_strategy`` names):

- ``reject`` (the default): the create is refused (:class:`SessionBusy`, HTTP 409);
- ``enqueue``: the new run waits and starts when the runs before it ended, in order (the
  claim's eligibility rule, migration 0012);
- ``interrupt``: the active runs are cancelled through the verified-cancel path, keeping
  what they did (their partial turns and, as a revision, their file changes); then the new
  run starts;
- ``rollback``: as ``interrupt``, but the cancelled runs' work is discarded: no turns and
  no revision from them.

"Active" is queued, running or paused: a paused run still holds its session.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

from runtime.runs.errors import SessionBusy
from storage.sessions import ActiveRun

Strategy = Literal["reject", "enqueue", "interrupt", "rollback"]
STRATEGIES: Final = ("reject", "enqueue", "interrupt", "rollback")
DEFAULT_STRATEGY: Final = "reject"


@dataclass(frozen=True, slots=True)
class FollowUp:
    """What to do once the new run is stored.

    Attributes:
        cancel: runs of the session to cancel (verified), newest first, so a run queued
            behind the active one is gone before the active one ends and wakes it.
        discard: the cancelled runs' work is thrown away (``rollback``).
    """

    cancel: tuple[uuid.UUID, ...] = ()
    discard: bool = False


def follow_up(session_id: uuid.UUID, strategy: str, active: Sequence[ActiveRun]) -> FollowUp:
    """Decide a create on a session whose not-yet-finished runs are ``active`` (in session
    order), under the lock on the session row (so ``active`` cannot change meanwhile).

    Raises:
        SessionBusy: ``reject`` and a run of the session is active.
        ValueError: an unknown strategy (the API refuses those with a 422 first).
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown multitask strategy {strategy!r}")
    if not active or strategy == "enqueue":
        return FollowUp()
    if strategy == "reject":
        run = active[0]
        raise SessionBusy(session_id, run.id, run.status)
    return FollowUp(tuple(run.id for run in reversed(active)), discard=strategy == "rollback")
