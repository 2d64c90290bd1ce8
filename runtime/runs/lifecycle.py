"""The run lifecycle: one run's rules as a plain object (functional core, imperative shell).

:class:`RunLifecycle` holds an explicit :class:`Phase`, applies the one transition table
(:mod:`runtime.runs.states`) and returns effects (:mod:`runtime.runs.effects`); it does no
I/O and starts no threads. Its RunActor carries the effects out and feeds their results
back (``claimed``, ``loaded``, ``status_written``, ...). Tests drive it directly
(tests/unit/test_lifecycle.py).

Rules it implements (docs/design.md sections 3 and 8, contract 1.6, 1.7 and 3.3):

- Execution: claim (``queued -> running``; a restarted actor takes its ``running`` run
  over), ``plan.updated``, start the engine; engine events become event drafts; the engine's
  terminal event decides the end: completed (auto-apply, fallback text, ``completed``),
  paused, or failed.
- Cancel is verified: while the engine runs, ``cancelled`` is written only once the engine
  has stopped; an unconfirmed stop fails the run. A queued or paused run is cancelled at
  once; a terminal one is answered unchanged (contract 1.7), as is a run executing on
  another node.
- Resume only from ``paused``; reconcile (a run left ``running`` by a dead process) by the
  restart policy; give up after too many actor crashes.
- Sessions (docs/design.md 10): a session run's final (or paused) status is written with
  the turns it adds to its session (its messages, the engine's transcript, text streamed
  after it), and once a final one is written the session's next queued run is woken. A
  cancelled session run keeps its work (its turns, and its file changes auto-applied as a
  revision, as the ``interrupt`` strategy needs) unless the cancel discards it
  (``rollback``: no turns, no revision).
- Exactly once (issue 10): a completed engine's result is recorded on the run before the
  finish starts; a run claimed or reconciled with a recorded result is finalised from it
  without its engine. A terminal status is written in one transaction with its events
  (revision, checkpoint, fallback text, terminal event); a write that finds the run already
  moved (another writer won) emits nothing and answers waiters with the run as it is.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from runtime import approvals
from runtime.assistant_text import final_text
from runtime.engine import (
    CancelOutcome,
    Completed,
    Delta,
    EngineRef,
    Failed,
    Paused,
    RevisionsRecorded,
    Transcript,
    UsageReported,
)
from runtime.runs import resume_keys, states
from runtime.runs.effects import (
    Answer,
    Answerable,
    AutoApply,
    CancelEngine,
    Claim,
    DetachEngine,
    Effect,
    Emit,
    Finish,
    Load,
    RecordOutcome,
    RecordRevisions,
    RecordUsage,
    Refuse,
    ReleaseWorkspace,
    Resubmit,
    SetEngineRef,
    StartEngine,
    StopEngine,
    WakeSession,
    WriteStatus,
)
from runtime.runs.errors import (
    RunActorFailed,
    RunError,
    RunNotFound,
    RunNotPaused,
    RunUnresponsive,
)
from runtime.runs.events import EventDraft
from runtime.runs.resume_keys import ResumeKey
from runtime.runs.run_object import run_object
from runtime.runs.translate import EventMapper
from runtime.sessions.history import run_turns
from runtime.settings import Settings
from runtime.tools.selection import run_selection

RESTARTED_MESSAGE = "Run was interrupted: the Runwright process running it stopped or restarted"
SHUTDOWN_MESSAGE = "Run was stopped: the Runwright process running it shut down"
HANDED_BACK_MESSAGE = "The Runwright process running this run shut down; the run is queued again"
CANCEL_UNCONFIRMED_DEFAULT = "Engine cancellation could not be confirmed"
NO_RESULT_MESSAGE = "Engine stopped without reporting a result"
STATUS_UNSTORABLE_CODE = "RUN_STATUS_UNSTORABLE"
CANCELLED_DIAGNOSTICS = ({"message": "run cancelled"},)
STOP_TIMEOUT = CancelOutcome(
    False, [{"code": "ENGINE_STOP_TIMEOUT", "message": "Engine did not stop after cancellation"}]
)


class Phase(enum.Enum):
    """Where one actor's handling of its run stands."""

    IDLE = "idle"  #: nothing asked yet
    LOADING = "loading"  #: reading the run to decide a command (see ``intent``)
    CLAIMING = "claiming"  #: taking the run for execution
    STARTING = "starting"  #: claimed; the engine session is being opened
    RUNNING = "running"  #: the engine session is live
    CANCELLING = "cancelling"  #: the engine was asked to stop; waiting for it
    WRITING = "writing"  #: the engine is over; the run's new status is being written
    DONE = "done"  #: nothing left to do (a late command starts over from LOADING)


# ---- why the lifecycle is loading or writing ----------------------------------------------


@dataclass(frozen=True, slots=True)
class _Execute:
    attempt: int


@dataclass(frozen=True, slots=True)
class _Cancel:
    pass


@dataclass(frozen=True, slots=True)
class _Resume:
    payload: dict[str, Any]
    reply: Answerable
    approval: dict[str, Any] | None = None
    key: ResumeKey | None = None


@dataclass(frozen=True, slots=True)
class _Expire:
    """The approval timeout sweep found the run's pause expired."""


@dataclass(frozen=True, slots=True)
class _Reconcile:
    policy: str


@dataclass(frozen=True, slots=True)
class _GiveUp:
    error: str


@dataclass(frozen=True, slots=True)
class _Settle:
    """A write lost its race: answer the waiters with the run as it is now."""


@dataclass(frozen=True, slots=True)
class _Terminal:
    """A final status write (completed, failed, cancelled, paused) with its events."""


@dataclass(frozen=True, slots=True)
class _Requeued:
    """``-> queued`` by resume (``reply`` set), the requeue restart policy, or a hand-back
    at shutdown (``resubmit`` False: another process or the next start takes it)."""

    reply: Answerable | None
    resubmit: bool = True
    #: The resume that asked for it, decided again if the write loses its race and the
    #: resume can recognise itself (a key or a decision): another node may have applied it.
    resume: _Resume | None = None


_Intent = _Execute | _Cancel | _Resume | _Expire | _Reconcile | _GiveUp | _Settle
_Write = _Terminal | _Requeued

#: Phases in which an engine session belongs to this actor (started or being started).
EXECUTING = frozenset({Phase.CLAIMING, Phase.STARTING, Phase.RUNNING, Phase.CANCELLING})


class RunLifecycle:
    """The state of one RunActor's run and the rules that move it.

    Every public method takes an input (a command, an engine report or the result of an
    effect) and returns the effects to carry out, in order. Inputs that do not apply in the
    current phase (a late engine report, say) return ``[]``.

    Args:
        redact: applied to every failure text a tenant can read (the run's error and its
            ``run.failed`` diagnostics): server paths out (:mod:`runtime.redact`).
        tool_settings: the toolpack's settings (command allowlist, size limits, ...), for
            an approval's edited arguments at resume (:func:`runtime.approvals.check_resume`);
            None: the defaults.

    Attributes:
        phase: the current :class:`Phase`.
        row: the run as last read or written (None until known).
        waiters: cancel commands waiting for the run's final row.
    """

    def __init__(
        self,
        *,
        redact: Callable[[str], str] = str,
        tool_settings: Settings | None = None,
    ) -> None:
        self._redact = redact
        self._tool_settings = tool_settings
        self.phase = Phase.IDLE
        self.row: dict[str, Any] | None = None
        self.waiters: list[Answerable] = []
        self.attempt = 0
        self.engine_live = False
        self.outcome: Completed | Failed | Paused | None = None
        self.cancel_outcome: CancelOutcome | None = None
        self.mapper = EventMapper()
        self._intent: _Intent | None = None
        self._write: _Write | None = None
        self._handback: str | None = None  # the shutdown policy once a hand-back began
        # Sessions: whether an engine session ran here, what it recorded of the
        # conversation, the text streamed since, a cancel that discards the run's work,
        # turns recorded with the engine's result, and an auto-apply before ``cancelled``.
        self.engine_ran = False
        self.transcript: tuple[dict[str, Any], ...] = ()
        self.partial: list[str] = []
        self.discard = False
        self._recorded_turns: list[dict[str, Any]] | None = None
        self._cancel_apply = False
        self._status_refused = False  # a status write was refused for its data (once)

    # ---- commands ------------------------------------------------------------------------

    def execute(self, attempt: int) -> list[Effect]:
        """Execute the run: ``attempt`` 0 claims a queued run; a later attempt (after an
        actor crash) first reads the run to take it over."""
        if self.phase not in (Phase.IDLE, Phase.DONE):
            return []
        self.attempt = attempt
        if attempt == 0:
            return self._claim(take_over=False)
        return self._load(_Execute(attempt))

    def execute_claimed(self, row: dict[str, Any]) -> list[Effect]:
        """Execute a run this node already claimed from the run queue (``row``: the
        claimed row, ``running`` under this node's lease): as :meth:`claimed`."""
        if self.phase not in (Phase.IDLE, Phase.DONE):
            return []
        self.attempt = 0
        self.phase = Phase.CLAIMING
        return self.claimed(row)

    def fenced(self) -> list[Effect]:
        """A write of this run was refused under its claim token: another node took the
        run (this node stalled past its heartbeat, docs/design.md 9). Stop the engine and
        write nothing more; waiters get the run as it is now. Only an executing or
        writing actor reacts (a load or a write under way settles by itself)."""
        if self.phase not in EXECUTING and self.phase is not Phase.WRITING:
            return []
        self.engine_live = False
        self._write = None
        return [DetachEngine(), *self._load(_Settle())]

    def cancel(self, reply: Answerable, *, discard: bool = False) -> list[Effect]:
        """Cancel (contract 1.7): the reply gets the run's row once it is settled.
        ``discard``: a session run's work is thrown away (``rollback``), not kept."""
        self.waiters.append(reply)
        self.discard = self.discard or discard
        if self.phase is Phase.RUNNING:
            self.phase = Phase.CANCELLING
            return [CancelEngine()]
        if self.phase in (Phase.IDLE, Phase.DONE):
            return self._load(_Cancel())
        # Otherwise (claiming, starting, cancelling, loading, writing): the waiter is
        # answered when the current work settles (see _settled).
        return []

    def resume(
        self,
        payload: dict[str, Any],
        reply: Answerable,
        approval: dict[str, Any] | None = None,
        key: ResumeKey | None = None,
    ) -> list[Effect]:
        """Resume a paused run with ``payload`` (contract 1.6) and, for a run paused on an
        approval request, the decision ``approval`` (checked against the pending request
        by :func:`runtime.approvals.check_resume`; stored as the payload's ``approval``).
        ``key``: the request's ``Idempotency-Key`` (:mod:`runtime.runs.resume_keys`),
        stored with the resume.

        A repeat of a resume the run applied (:meth:`_applied`: its key, or the decision
        its last resume stored; a retry after a 503 whose command went through anyway) is
        answered with the run, not refused nor applied again; while that resume's own write
        is under way the repeat is asked to retry."""
        if self.phase in EXECUTING or self.phase is Phase.WRITING:
            if isinstance(self._write, _Requeued) and self._write.reply is not None:
                return [Refuse(reply, RunUnresponsive("The run is busy; try again"))]
            try:
                if self.row is not None and self._applied(self.row, approval, key):
                    return [Answer(reply, self.row)]
            except RunError as exc:
                return [Refuse(reply, exc)]
            return [Refuse(reply, RunNotPaused("Run is not paused"))]
        if self.phase is Phase.LOADING:  # busy deciding another command: ask again
            return [Refuse(reply, RunUnresponsive("The run is busy; try again"))]
        return self._load(_Resume(payload, reply, approval, key))

    def expire_approval(self) -> list[Effect]:
        """The sweep found the run paused on an approval past its timeout: fail it closed
        (``APPROVAL_TIMEOUT``), if the conditional write still finds it so."""
        if self.phase not in (Phase.IDLE, Phase.DONE):
            return []
        return self._load(_Expire())

    def reconcile(self, policy: str) -> list[Effect]:
        """The run may have been left ``running`` by a dead process: settle it by
        ``policy`` (``fail`` or ``requeue``). A run executing here is alive: no-op."""
        if self.phase not in (Phase.IDLE, Phase.DONE):
            return []
        return self._load(_Reconcile(policy))

    def hand_back(self, policy: str) -> list[Effect]:
        """Shutdown after the grace period (docs/design.md section 9): stop the engine, then
        hand the run back by ``policy``: ``requeue`` (queued again, lease released, a
        ``plan.updated`` with a ``RUN_REQUEUED`` diagnostic) or ``fail``. An engine that
        cannot confirm its stop fails the run (fail-closed, as for cancel); a result the
        engine reported before it stopped is finished normally. Only an executing run is
        handed back; any other phase ends on its own."""
        if self.phase is not Phase.RUNNING:
            return []
        self._handback = policy
        self.phase = Phase.CANCELLING
        return [CancelEngine()]

    def give_up(self, error: str) -> list[Effect]:
        """The run's actors crashed more often than allowed: fail the run."""
        return self._load(_GiveUp(error))

    def crashed(self) -> list[Effect]:
        """The actor is failing: stop the engine and answer every waiter (a command whose
        handling crashed still gets an answer; the Supervisor restarts the run)."""
        waiters, self.waiters = self.waiters, []
        for pending in (self._intent, self._write):
            if isinstance(pending, (_Resume, _Requeued)) and pending.reply is not None:
                waiters.append(pending.reply)
        self.phase = Phase.DONE
        self.engine_live = False
        self._intent = self._write = None
        failure = RunActorFailed("The run's actor failed; try again")
        return [DetachEngine(), *(Refuse(w, failure) for w in waiters)]

    # ---- results of effects ---------------------------------------------------------

    def loaded(self, row: dict[str, Any] | None) -> list[Effect]:
        """Result of :class:`Load`."""
        if self.phase is not Phase.LOADING:
            return []
        self.row = row
        intent, self._intent = self._intent, None
        match intent:
            case _Execute():
                if row is None:
                    return self._settled()
                return self._claim(take_over=row["status"] == states.RUNNING)
            case _Cancel():
                if row is None:
                    return self._refuse_waiters(RunNotFound("run not found"))
                if states.is_terminal(row["status"]) or row["status"] == states.RUNNING:
                    # Terminal: idempotent (contract 1.7). Running without an engine here:
                    # another node owns it; report it unchanged.
                    return self._settled()
                return self._write_terminal(states.CANCELLED, CANCELLED_DIAGNOSTICS)
            case _Resume(payload=payload, reply=reply, approval=approval, key=key):
                try:
                    if row is not None and self._applied(row, approval, key):
                        return [Answer(reply, row), *self._settled()]
                    if row is None or row["status"] != states.PAUSED:
                        raise RunNotPaused("Run is not paused")
                    approvals.check_resume(
                        row.get("checkpoint"), approval, settings=self._tool_settings,
                        selection=run_selection(row["input_params"]),
                    )  # fmt: skip
                except RunError as exc:
                    return [Refuse(reply, exc), *self._settled()]
                if approval is not None:
                    payload = {**payload, "approval": approval}
                payload = resume_keys.with_key(payload, row.get("resume_payload"), key)
                return self._write_status(
                    _Requeued(reply, resume=intent),
                    WriteStatus(
                        states.QUEUED, states.sources(states.QUEUED, only=(states.PAUSED,)),
                        resume_payload=payload,
                    ),
                )  # fmt: skip
            case _Expire():
                if row is None or row["status"] != states.PAUSED:
                    return self._settled()
                pending = approvals.pending_of(row.get("checkpoint")) or {}
                timeout = approvals.run_timeout(row["input_params"]) or 0
                message = f"No approval decision within {timeout:g} seconds: the run failed closed"
                diagnostic = {"code": "APPROVAL_TIMEOUT", "message": message,
                              "request_id": pending.get("request_id")}  # fmt: skip
                write = WriteStatus(
                    states.FAILED, states.sources(states.FAILED, only=(states.PAUSED,)),
                    error=message, terminal=(diagnostic,), if_expired=True,
                )  # fmt: skip
                return self._write_status(_Terminal(), write)
            case _Reconcile(policy=policy):
                if row is None or row["status"] != states.RUNNING:
                    return self._settled()
                if recorded_completion(row) is not None:  # finished work: finalise it
                    return self._claim(take_over=True)
                if policy == "requeue":
                    plan = EventDraft("plan.updated", {"summary": "Run requeued after a restart"})
                    return self._write_status(
                        _Requeued(None),
                        WriteStatus(
                            states.QUEUED, states.sources(states.QUEUED, only=(states.RUNNING,)),
                            events=(plan,),
                        ),
                    )  # fmt: skip
                return self._fail(
                    RESTARTED_MESSAGE, [{"code": "RUN_INTERRUPTED", "message": RESTARTED_MESSAGE}]
                )
            case _GiveUp(error=error):
                message = f"Run actor crashed too many times: {error}"
                return self._fail(message, [{"code": "RUN_ACTOR_CRASHED", "message": message}])
            case _:  # _Settle
                return self._settled()

    def claimed(self, row: dict[str, Any] | None) -> list[Effect]:
        """Result of :class:`Claim`: None when the run was not claimable (gone, cancelled
        before it started, or owned elsewhere)."""
        if self.phase is not Phase.CLAIMING:
            return []
        if row is None:
            return self._load(_Settle()) if self.waiters else self._settled()
        self.row = row
        recorded = recorded_completion(row)
        if recorded is not None:  # the engine's work is done: finish it, never redo it
            self.outcome, self.mapper.saw_text = recorded
            turns = row["engine_outcome"].get("session_turns")
            self._recorded_turns = turns if isinstance(turns, list) else None
            self.phase = Phase.WRITING
            return [AutoApply()]
        if self.waiters:  # cancelled while the claim was under way: never start
            return self._write_terminal(states.CANCELLED, CANCELLED_DIAGNOSTICS)
        self.phase = Phase.STARTING
        if self.attempt == 0:
            plan: dict[str, Any] = {"summary": "Coding-agent run started"}
        else:
            plan = {"summary": "Coding-agent run restarted", "attempt": self.attempt}
        return [Emit((EventDraft("plan.updated", plan),)), StartEngine(self.attempt)]

    def engine_started(self, replayed: str = "") -> list[Effect]:
        """Result of :class:`StartEngine`: the pump task runs. ``replayed``: the assistant
        text the log already holds for this turn (an interrupted attempt's), which the new
        attempt's text is not logged twice for (see :class:`EventMapper`)."""
        if self.phase is not Phase.STARTING:
            return []
        self.engine_live = True
        self.engine_ran = True
        self.mapper = EventMapper(replayed)
        self.outcome = None
        self.cancel_outcome = None
        self.transcript, self.partial = (), []
        if self.waiters:  # a cancel arrived while the engine was being opened
            self.phase = Phase.CANCELLING
            return [CancelEngine()]
        self.phase = Phase.RUNNING
        return []

    def engine_start_failed(self, message: str) -> list[Effect]:
        """Result of :class:`StartEngine`: the context or session could not be made."""
        if self.phase is not Phase.STARTING:
            return []
        return self._fail(message, [])

    def status_written(self, row: dict[str, Any] | None) -> list[Effect]:
        """Result of :class:`WriteStatus`: the new row, or None when the run had already
        left the expected statuses (another writer settled it and emitted its events)."""
        if self.phase is not Phase.WRITING:
            return []
        write, self._write = self._write, None
        if row is None:
            if isinstance(write, _Requeued) and write.reply is not None:
                again = write.resume
                if again is not None and (again.key is not None or again.approval is not None):
                    return self._load(again)  # the same resume won elsewhere: answer it
                return [Refuse(write.reply, RunNotPaused("Run is not paused")), *self._settled()]
            return self._load(_Settle())
        self.row = row
        if isinstance(write, _Requeued):
            answer: list[Effect] = [] if write.reply is None else [Answer(write.reply, row)]
            resubmit: list[Effect] = [Resubmit()] if write.resubmit else []
            return [*answer, *resubmit, *self._settled()]
        session_id = row.get("session_id")
        if session_id is not None and states.is_terminal(row["status"]):
            return [WakeSession(session_id), *self._settled()]
        return self._settled()

    def status_refused(self, target: str, reason: str) -> list[Effect]:
        """Result of :class:`WriteStatus` when Postgres refused the write for its data
        (``storage.errors.StatementRefused``; ``reason``, e.g. ``CheckViolationError``): it
        would be refused every time, so the run fails instead, with a
        ``RUN_STATUS_UNSTORABLE`` diagnostic and without the engine's output or the run's
        session turns (which may be what was refused). A resume waiting on the write is
        refused.

        Raises:
            RuntimeError: that failure's own write was refused too; the actor crashes and
                its Supervisor restarts it (and past its limit fails the run with
                ``RUN_ACTOR_CRASHED``).
        """
        if self.phase is not Phase.WRITING:
            return []
        if self._status_refused:
            raise RuntimeError(f"writing the run's failure was refused too ({reason})")
        self._status_refused = True
        write, self._write = self._write, None
        self.outcome = None
        self.discard = True  # the session keeps none of this run's turns
        self._recorded_turns = None
        message = (f"The run's status '{target}' could not be stored: the database refused "
                   f"it ({reason})")  # fmt: skip
        refused: list[Effect] = []
        if isinstance(write, _Requeued) and write.reply is not None:
            refused.append(Refuse(write.reply, RunActorFailed(message)))
        return [*refused, *self._fail(message, [{"code": STATUS_UNSTORABLE_CODE,
                                                 "message": message}])]  # fmt: skip

    def applied(self, revision: Any | None) -> list[Effect]:
        """Result of :class:`AutoApply` (an ``AppliedRevision`` or None: nothing changed):
        the rest of contract 3.3's completed sequence (or, for a session run cancelled
        with its work kept, ``cancelled`` after the revision's events)."""
        if self.phase is Phase.WRITING and self._cancel_apply:
            write = WriteStatus(
                states.CANCELLED, states.sources(states.CANCELLED),
                events=tuple(_revision_events(revision)), terminal=CANCELLED_DIAGNOSTICS,
            )  # fmt: skip
            return self._write_status(_Terminal(), write)
        if self.phase is not Phase.WRITING or not isinstance(self.outcome, Completed):
            return []
        assert self.row is not None
        drafts = _revision_events(revision)
        if not self.mapper.saw_text:
            prompt = str(self.row["input_params"].get("input", ""))
            text = final_text(self.outcome.output, prompt)
            drafts.append(EventDraft("assistant.delta", {"content": text}))
        write = WriteStatus(
            states.COMPLETED, states.sources(states.COMPLETED), output=self.outcome.output,
            events=tuple(drafts), terminal=(),
        )  # fmt: skip
        return self._write_status(_Terminal(), write)

    def apply_failed(self, message: str, diagnostics: list[dict[str, Any]]) -> list[Effect]:
        """Result of :class:`AutoApply`: the workspace cannot become a revision (a
        validation error or a conflict), which fails the run (contract 3.3). A cancelled
        session run is still ``cancelled``, its changes not applied (said in a diagnostic)."""
        if self.phase is not Phase.WRITING:
            return []
        if self._cancel_apply:
            extra = [
                {**d, "message": self._redact(str(d.get("message") or message))}
                for d in (diagnostics or [{"message": message}])
            ]
            write = WriteStatus(
                states.CANCELLED, states.sources(states.CANCELLED),
                terminal=(*CANCELLED_DIAGNOSTICS, *extra),
            )  # fmt: skip
            return self._write_status(_Terminal(), write)
        return self._fail(message, diagnostics)

    # ---- engine reports ------------------------------------------------------------------

    def engine_events(self, events: tuple[Any, ...]) -> list[Effect]:
        """Engine events (deltas already coalesced), in order.

        Raises:
            TypeError: the engine yielded something that is not an engine event.
        """
        if self.phase not in (Phase.RUNNING, Phase.CANCELLING):
            return []
        effects: list[Effect] = []
        drafts: list[EventDraft] = []
        for event in events:
            if isinstance(event, Transcript):
                self.transcript, self.partial = event.messages, []
                continue
            if isinstance(event, Delta) and self._in_session():
                self.partial.append(event.content)
            if isinstance(event, (EngineRef, RevisionsRecorded, UsageReported)):
                if drafts:
                    effects.append(Emit(tuple(drafts)))
                    drafts = []
                if isinstance(event, EngineRef):
                    effects.append(SetEngineRef(event.ref))
                elif isinstance(event, UsageReported):
                    effects.append(RecordUsage(event))
                else:
                    effects.append(RecordRevisions(event.checkpoint, event.result))
            elif isinstance(event, (Completed, Failed, Paused)):
                self.outcome = event
            else:
                draft = self.mapper.draft(event)
                notice = self.mapper.diverged()
                drafts.extend(d for d in (notice, draft) if d is not None)
        if drafts:
            effects.append(Emit(tuple(drafts)))
        return effects

    def engine_ended(self, error: str | None) -> list[Effect]:
        """The pump finished: the engine has stopped (``error``: it raised)."""
        if self.phase not in (Phase.RUNNING, Phase.CANCELLING):
            return []
        self.engine_live = False
        if self.phase is Phase.CANCELLING:
            if self.cancel_outcome is None:
                return []  # wait for the engine's answer to cancel()
            return self._finish_cancel(self.cancel_outcome)
        return self._engine_result(error)

    def _engine_result(self, error: str | None) -> list[Effect]:
        """The engine stopped on its own: its result decides the end (contract 3.3)."""
        outcome = self.outcome
        if error is not None:
            return self._fail(error, [])
        if isinstance(outcome, Completed):
            self.phase = Phase.WRITING
            self._write = None
            record = {"kind": "completed", "output": outcome.output,
                      "saw_text": self.mapper.saw_text}  # fmt: skip
            turns = self._session_turns()
            if turns is not None:  # a restarted actor finishes from the record alone
                record["session_turns"] = turns
            return [RecordOutcome(record), AutoApply()]
        if isinstance(outcome, Paused):
            return self._write_status(_Terminal(), self._pause(outcome))
        if isinstance(outcome, Failed):
            return self._fail(outcome.message, outcome.diagnostics)
        return self._fail(NO_RESULT_MESSAGE, [])

    def cancel_answered(self, outcome: CancelOutcome) -> list[Effect]:
        """The engine's answer to :class:`CancelEngine`."""
        if self.phase is not Phase.CANCELLING:
            return []
        self.cancel_outcome = outcome
        if not self.engine_live:  # the engine already ended on its own
            return self._finish_cancel(outcome)
        return [StopEngine()]

    def stop_overdue(self) -> list[Effect]:
        """The engine did not stop within the cancel grace period: fail closed."""
        if self.phase is not Phase.CANCELLING or not self.engine_live:
            return []
        return self._finish_cancel(STOP_TIMEOUT)

    # ---- helpers ---------------------------------------------------------------------------

    def _pause(self, outcome: Paused) -> WriteStatus:
        """The ``paused`` write; a pause on an approval request also stores the request in
        the checkpoint, emits ``approval.requested`` and starts the run's pause timeout."""
        checkpoint, timeout = dict(outcome.checkpoint), None
        events: tuple[EventDraft, ...] = ()
        if outcome.approval is not None:
            checkpoint["approval"] = outcome.approval
            assert self.row is not None
            timeout = approvals.run_timeout(self.row["input_params"])
            payload = {**outcome.approval, "timeout_seconds": timeout}
            events = (EventDraft("approval.requested", payload),)
        return WriteStatus(
            states.PAUSED, states.sources(states.PAUSED), checkpoint=checkpoint,
            output=outcome.output, events=events, terminal=(), approval_timeout=timeout,
        )  # fmt: skip

    @staticmethod
    def _applied(
        row: dict[str, Any], approval: dict[str, Any] | None, key: ResumeKey | None = None
    ) -> bool:
        """Whether this resume already applied: ``row`` holds its ``key``
        (:func:`runtime.runs.resume_keys.applied`), or ``approval`` is the decision ``row``'s
        last resume stored (:func:`runtime.approvals.same_decision`) and no longer pending:
        the run left that pause (queued, running, ended, or paused on another request).

        Raises:
            ResumeKeyReused: ``key`` was applied with another body.
        """
        if resume_keys.applied(row.get("resume_payload"), key):
            return True
        if approval is None:
            return False
        if row["status"] == states.PAUSED:
            pending = approvals.pending_of(row.get("checkpoint")) or {}
            if pending.get("request_id") == approval.get("request_id"):
                return False  # still waiting for it: decide it now
        return approvals.same_decision(row.get("resume_payload"), approval)

    def _load(self, intent: _Intent) -> list[Effect]:
        self.phase = Phase.LOADING
        self._intent = intent
        return [Load()]

    def _claim(self, *, take_over: bool) -> list[Effect]:
        self.phase = Phase.CLAIMING
        expected = (states.RUNNING,) if take_over else states.sources(states.RUNNING)
        return [Claim(take_over, expected)]

    def _write_status(self, write: _Write, effect: WriteStatus) -> list[Effect]:
        self.phase = Phase.WRITING
        self._write = write
        if states.is_terminal(effect.target) or effect.target == states.PAUSED:
            turns = self._session_turns()
            if turns is not None:
                effect = replace(effect, session_turns=tuple(turns))
            elif self.discard and self._in_session():  # what a pause recorded goes too
                effect = replace(effect, session_turns=())
        return [effect]

    def _session_turns(self) -> list[dict[str, Any]] | None:
        """What this run adds to its session's conversation, or None: no session, a
        discarded run, or no engine session ran here (nothing to add)."""
        row = self.row
        if row is None or row.get("session_id") is None or self.discard:
            return None
        if self._recorded_turns is not None:
            return self._recorded_turns
        if not self.engine_ran:
            return None
        final = None
        if isinstance(self.outcome, Completed):
            final = final_text(self.outcome.output, str(row["input_params"].get("input", "")))
        own = row["input_params"].get("messages") or []
        return run_turns(own, self.transcript, "".join(self.partial), final)

    def _write_terminal(self, target: str, diagnostics: tuple[dict[str, Any], ...]) -> list[Effect]:
        write = WriteStatus(target, states.sources(target), terminal=diagnostics)
        return self._write_status(_Terminal(), write)

    def _fail(self, message: str, diagnostics: list[dict[str, Any]]) -> list[Effect]:
        redact = self._redact
        message = redact(message)
        diagnostics = [
            {**d, "message": redact(d["message"])} if isinstance(d.get("message"), str) else d
            for d in diagnostics
        ]
        write = WriteStatus(
            states.FAILED, states.sources(states.FAILED), error=message,
            terminal=failure_diagnostics(message, diagnostics),
        )  # fmt: skip
        return self._write_status(_Terminal(), write)

    def _finish_cancel(self, outcome: CancelOutcome) -> list[Effect]:
        self.engine_live = False
        if self._handback is not None and not self.waiters:  # shutdown, no user cancel
            if self.outcome is not None:  # the engine finished first: keep its result
                return [DetachEngine(), *self._engine_result(None)]
            if outcome.confirmed and self._handback == "requeue":
                note = EventDraft(
                    "plan.updated", {"summary": HANDED_BACK_MESSAGE, "requeued": True},
                    ({"code": "RUN_REQUEUED", "message": HANDED_BACK_MESSAGE},),
                )  # fmt: skip
                write = WriteStatus(
                    states.QUEUED, states.sources(states.QUEUED, only=(states.RUNNING,)),
                    events=(note,),
                )  # fmt: skip
                return [DetachEngine(), *self._write_status(_Requeued(None, False), write)]
            if outcome.confirmed:
                diagnostic = {"code": "RUN_INTERRUPTED", "message": SHUTDOWN_MESSAGE}
                return [DetachEngine(), *self._fail(SHUTDOWN_MESSAGE, [diagnostic])]
        if outcome.confirmed:
            if self._keeps_work():  # its file changes become a revision first
                self.phase = Phase.WRITING
                self._cancel_apply = True
                return [DetachEngine(), AutoApply()]
            return [DetachEngine(), *self._write_terminal(states.CANCELLED, CANCELLED_DIAGNOSTICS)]
        diagnostics = outcome.diagnostics or [{"message": CANCEL_UNCONFIRMED_DEFAULT}]
        message = str(diagnostics[0].get("message") or CANCEL_UNCONFIRMED_DEFAULT)
        return [DetachEngine(), *self._fail(message, diagnostics)]

    def _in_session(self) -> bool:
        return self.row is not None and self.row.get("session_id") is not None

    def _keeps_work(self) -> bool:
        """A cancelled session run whose engine ran keeps its work unless discarded."""
        row = self.row
        return (
            row is not None
            and row.get("session_id") is not None
            and (self.engine_ran and not self.discard)
        )

    def _refuse_waiters(self, error: Exception) -> list[Effect]:
        waiters, self.waiters = self.waiters, []
        self.phase = Phase.DONE
        return [*(Refuse(w, error) for w in waiters), Finish()]  # type: ignore[arg-type]

    def _settled(self) -> list[Effect]:
        """The current work is over: answer waiters with the row, or, when a cancel came
        in meanwhile and the run is not terminal, carry the cancel out first. A terminal
        run's workspace is released (queued, running and paused runs keep theirs)."""
        row = self.row
        if self.waiters and row is not None and row["status"] in (states.QUEUED, states.PAUSED):
            return self._load(_Cancel())
        waiters, self.waiters = self.waiters, []
        self.phase = Phase.DONE
        if row is None:
            return [*(Refuse(w, RunNotFound("run not found")) for w in waiters), Finish()]
        release: list[Effect] = [ReleaseWorkspace()] if states.is_terminal(row["status"]) else []
        return [*(Answer(w, row) for w in waiters), *release, Finish()]


def _revision_events(revision: Any | None) -> list[EventDraft]:
    """``revision.created`` and ``checkpoint.created`` of an applied revision (contract 3.3),
    none when nothing was applied."""
    if revision is None:
        return []
    return [
        EventDraft("revision.created", revision.revision_payload()),
        EventDraft("checkpoint.created", revision.checkpoint_payload()),
    ]


def recorded_completion(row: dict[str, Any]) -> tuple[Completed, bool] | None:
    """The completed engine result recorded on ``row`` (and whether its text was streamed),
    or None when the engine's work is not recorded."""
    record = row.get("engine_outcome")
    if not isinstance(record, dict) or record.get("kind") != "completed":
        return None
    output = record.get("output")
    return Completed(output if isinstance(output, dict) else {}), bool(record.get("saw_text"))


def terminal_event(row: dict[str, Any], diagnostics: tuple[dict[str, Any], ...]) -> EventDraft:
    """Contract 3.3: ``run.completed`` for completed and paused runs, ``run.failed``
    otherwise; the payload is the run object as written."""
    kind = "run.completed" if row["status"] in (states.COMPLETED, states.PAUSED) else "run.failed"
    return EventDraft(kind, run_object(row), diagnostics)


def failure_diagnostics(message: str, extra: list[dict[str, Any]]) -> tuple[dict[str, Any], ...]:
    """``run.failed`` diagnostics: the first item's ``message`` is the run's error."""
    if extra:
        first = {**extra[0], "message": extra[0].get("message") or message}
        return (first, *extra[1:])
    return ({"message": message},)
