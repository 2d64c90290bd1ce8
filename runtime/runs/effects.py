"""What the run lifecycle asks its shell to do: plain, immutable values (no I/O here).

:class:`runtime.runs.lifecycle.RunLifecycle` returns lists of these; the RunActor carries
them out in order. An effect whose result the lifecycle needs (marked *answers with*) is
always the last of its list, and the actor feeds its result back before going on, so the
lifecycle sees every outcome in the order it happened.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

from runtime.engine import UsageReported
from runtime.runs.errors import RunError
from runtime.runs.events import EventDraft


class Answerable(Protocol):
    """A one-shot answer channel (:class:`runtime.bridge.Reply` in production)."""

    def set(self, value: Any) -> None:
        """Resolve with a value."""

    def fail(self, exc: BaseException) -> None:
        """Resolve with an exception."""


@dataclass(frozen=True, slots=True)
class Load:
    """Re-read the run once every event submitted for it is persisted.
    Answers with :meth:`RunLifecycle.loaded`."""


@dataclass(frozen=True, slots=True)
class Claim:
    """Take the run for execution with a lease: ``queued -> running`` (the sources come from
    the transition table), or, with ``take_over``, keep a ``running`` run whose previous
    actor crashed. Answers with :meth:`RunLifecycle.claimed` (None: not claimable)."""

    take_over: bool
    expected: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class StartEngine:
    """Build the engine context for ``attempt``, open the session and start its pump.
    Answers with :meth:`RunLifecycle.engine_started` or
    :meth:`RunLifecycle.engine_start_failed`."""

    attempt: int


@dataclass(frozen=True, slots=True)
class CancelEngine:
    """Ask the engine session to stop (``EngineSession.cancel``); its answer arrives later
    as :meth:`RunLifecycle.cancel_answered`."""


@dataclass(frozen=True, slots=True)
class StopEngine:
    """Cancel the pump task; :meth:`RunLifecycle.engine_ended` follows, or
    :meth:`RunLifecycle.stop_overdue` after the cancel grace period."""


@dataclass(frozen=True, slots=True)
class DetachEngine:
    """From now on ignore everything the current engine session still reports; cancel its
    pump task if it is still alive (no verification wanted any more)."""


@dataclass(frozen=True, slots=True)
class WriteStatus:
    """A conditional status write: the run moves to ``target`` only from one of
    ``expected`` (a subset of the transition table's sources for ``target``). Answers with
    :meth:`RunLifecycle.status_written` (None: the run was no longer in ``expected``).

    ``events`` and, when ``terminal`` is not None, the terminal event built from the
    written row with ``terminal`` as its diagnostics
    (:func:`runtime.runs.lifecycle.terminal_event`) are stored in the same transaction as
    the status, after every event submitted before: all of it or nothing, so retrying the
    write, or finishing the run again after a crash, never repeats an event.

    ``approval_timeout`` and ``if_expired``: see the fields (issue 12, approvals).
    """

    target: str
    expected: tuple[str, ...]
    error: str | None = None
    output: dict[str, Any] | None = None
    checkpoint: dict[str, Any] | None = None
    resume_payload: dict[str, Any] | None = None
    events: tuple[EventDraft, ...] = ()
    terminal: tuple[dict[str, Any], ...] | None = None
    #: ``paused`` on an approval request: the pause fails closed after this many seconds.
    approval_timeout: float | None = None
    #: Write only if the run's pause on approval has expired (the timeout sweep).
    if_expired: bool = False
    #: What a session run adds to its session's conversation, written with a final or
    #: paused status (None: leave what is stored; ``()``: clear it, a rolled-back run).
    session_turns: tuple[dict[str, Any], ...] | None = None


@dataclass(frozen=True, slots=True)
class RecordOutcome:
    """Persist the run's submitted events, then record the engine's result on the run
    (``engine_outcome``) before anything else of the finish happens: from here on the run
    is finalised from the record, never by running its engine again. For a run without a
    workspace (nothing to auto-apply) the actor has the terminal status statement record it
    instead: nothing happens in between, and the run is never final without it."""

    outcome: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AutoApply:
    """Turn the finished workspace into a draft revision and checkpoint (contract 8).
    Answers with :meth:`RunLifecycle.applied` or :meth:`RunLifecycle.apply_failed`."""


@dataclass(frozen=True, slots=True)
class SetEngineRef:
    """Store the engine's upstream handle as the run's ``engine_run_ref``."""

    ref: str


@dataclass(frozen=True, slots=True)
class RecordRevisions:
    """Link the run to a checkpoint its agent made (contract 7.3): ``checkpoint`` becomes the
    run's checkpoint revision; ``result`` its result revision (None: keep the run's result,
    or use ``checkpoint`` when it has none)."""

    checkpoint: uuid.UUID
    result: uuid.UUID | None


@dataclass(frozen=True, slots=True)
class RecordUsage:
    """Record one model or tool call's usage (issue 12 item 3): a ``run_usage`` row and the
    run's sums in one statement, counted once per ``report.call_id`` however often it is
    retried. For a model call the actor then emits ``usage.updated`` with the run's new
    sums (:func:`runtime.usage.usage_updated`) and counts its tokens in the metrics."""

    report: UsageReported


@dataclass(frozen=True, slots=True)
class Emit:
    """Number these drafts with the run's next seqs and hand them to the event writer."""

    drafts: tuple[EventDraft, ...]


@dataclass(frozen=True, slots=True)
class Answer:
    """Resolve a waiting command with the run's row."""

    reply: Answerable
    row: dict[str, Any] = field(repr=False)


@dataclass(frozen=True, slots=True)
class Refuse:
    """Resolve a waiting command with a typed run error."""

    reply: Answerable
    error: RunError


@dataclass(frozen=True, slots=True)
class Resubmit:
    """Tell the Supervisor the run is queued again and wants an execution slot."""


@dataclass(frozen=True, slots=True)
class WakeSession:
    """A run of ``session_id`` ended: submit the session's next queued run, which may
    start now (the claim's eligibility rule, migration 0012)."""

    session_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class ReleaseWorkspace:
    """The run is terminal: remove its workspace (its revision and checkpoint, if any, are
    already made). A no-op for runs without one."""


@dataclass(frozen=True, slots=True)
class Finish:
    """Tell the Supervisor this actor has nothing left to do."""


Effect = (
    Load | Claim | StartEngine | CancelEngine | StopEngine | DetachEngine | WriteStatus
    | RecordOutcome | AutoApply | SetEngineRef | RecordRevisions | RecordUsage | Emit | Answer
    | Refuse | Resubmit | WakeSession | ReleaseWorkspace | Finish
)  # fmt: skip
