"""Messages between the Supervisor, RunActors and the loop. Immutable; sent with ``tell``.

Replies travel on a :class:`runtime.bridge.Reply` carried in the message.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from runtime.bridge import Reply
from runtime.engine import CancelOutcome
from runtime.runs.resume_keys import ResumeKey

# ---- to the Supervisor -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Submit:
    """A run was queued here (created, resumed): claim work now if a slot is free.

    The run itself waits in the runs table, the queue every node claims from
    (docs/design.md 9), so any node may end up executing it; the fields say which run woke us.
    """

    run_id: uuid.UUID
    tenant_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class ClaimWork:
    """Poll the run queue: claim queued runs if this node has free slots (the periodic
    safety net behind :class:`Submit`; also sent once at start-up)."""


@dataclass(frozen=True, slots=True)
class Claimed:
    """The answer to a claim round: the rows this node now owns (``running`` under its
    lease, each with its new claim token), ``asked`` how many slots the round filled at
    most; ``failed`` when the claim hit a database error; ``passed_over`` when it left an
    eligible run queued (its tenant at the cap, or held by another statement)."""

    rows: tuple[dict[str, Any], ...]
    asked: int
    failed: bool = False
    passed_over: bool = False


@dataclass(frozen=True, slots=True)
class Fenced:
    """Writes of run ``run_id`` under claim token ``token`` were refused: another node
    took the run. Its actor stops its engine (if the token is still its own)."""

    run_id: uuid.UUID
    token: int


@dataclass(frozen=True, slots=True)
class Command:
    """A lifecycle command for a run: forwarded to its live actor, or to a new one."""

    run_id: uuid.UUID
    command: Cancel | Resume | Reconcile | ExpireApproval


@dataclass(frozen=True, slots=True)
class ActorDone:
    """A RunActor has nothing left to do (``executed``: it held an execution slot)."""

    run_id: uuid.UUID
    generation: int


@dataclass(frozen=True, slots=True)
class ActorFailed:
    """A RunActor crashed (pykka ``on_failure``); the Supervisor decides on a restart."""

    run_id: uuid.UUID
    generation: int
    error: str


@dataclass(frozen=True, slots=True)
class Drain:
    """Shutdown: start no more runs; answer ``reply`` once no run executes here."""

    reply: Reply[None]


@dataclass(frozen=True, slots=True)
class HandBackAll:
    """Shutdown after the grace period: tell every executing run to hand itself back."""

    policy: str


# ---- to a RunActor ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Execute:
    """Run the engine of a run this node claimed (``row``: the claimed row); without a
    row, claim the queued run first."""

    row: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Recover:
    """Take over a run whose previous actor crashed (``attempt`` = restarts so far)."""

    attempt: int


@dataclass(frozen=True, slots=True)
class GiveUp:
    """Fail the run: its actor crashed more often than the restart limit allows."""

    error: str


@dataclass(frozen=True, slots=True)
class Cancel:
    """Cancel the run (contract 1.7); the reply carries the run row afterwards.
    ``discard``: a session run's work is thrown away (``rollback``), not kept."""

    reply: Reply[dict[str, Any]]
    discard: bool = False


@dataclass(frozen=True, slots=True)
class Resume:
    """Resume a paused run with ``payload`` (contract 1.6); the reply carries the run row,
    or fails with :class:`runtime.runs.errors.RunNotPaused`."""

    payload: dict[str, Any]
    reply: Reply[dict[str, Any]]
    #: The decision on the run's pending approval request (the resume body's ``approval``).
    approval: dict[str, Any] | None = None
    #: The request's ``Idempotency-Key`` (:mod:`runtime.runs.resume_keys`), or None.
    key: ResumeKey | None = None


@dataclass(frozen=True, slots=True)
class ExpireApproval:
    """The approval timeout sweep: the run's pause on an approval request has expired;
    fail it closed if it is still paused (a conditional write decides)."""


@dataclass(frozen=True, slots=True)
class Reconcile:
    """At start-up: the run was left ``running`` by a process that is gone."""

    policy: str


@dataclass(frozen=True, slots=True)
class HandBack:
    """This process is shutting down: stop the engine and hand the run back by ``policy``
    (``requeue``: queued again, lease released; ``fail``: failed)."""

    policy: str


@dataclass(frozen=True, slots=True)
class EngineBatch:
    """Engine events from the pump of session ``token`` (deltas already coalesced)."""

    token: int
    events: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class EngineEnded:
    """The pump of session ``token`` finished: the engine stopped, its resources released.

    ``error`` is set when the engine raised; ``cancelled`` when it was cancelled.
    """

    token: int
    error: str | None
    cancelled: bool


@dataclass(frozen=True, slots=True)
class CancelAnswered:
    """The engine's answer to ``EngineSession.cancel()`` for session ``token``."""

    token: int
    outcome: CancelOutcome


@dataclass(frozen=True, slots=True)
class RetryEffects:
    """Time to retry the effect that failed on a database error (and those after it)."""


@dataclass(frozen=True, slots=True)
class StopOverdue:
    """The engine of session ``token`` did not stop in time after a cancel."""

    token: int
