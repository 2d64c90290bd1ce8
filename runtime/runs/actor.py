"""RunActor: one pykka ThreadingActor per live run, the imperative shell of its lifecycle.

The rules live in :class:`runtime.runs.lifecycle.RunLifecycle`; this actor turns messages
into lifecycle inputs and carries out the effects it returns, feeding results back. It
does no network I/O itself: database calls run on the asyncio loop through
:class:`runtime.bridge.LoopPort` (blocking this actor's thread, never the loop), and the
engine session runs on the loop as a task (:mod:`runtime.runs.pump`) that reports back by
``tell``. Only this actor changes its run's status (house rule 1).

A database error while carrying out an effect (Postgres restarting, a connection dropped)
does not crash the actor: that one effect, and the ones queued after it, are retried with
back-off (0.1 s doubling to 5 s) until the database answers, while the actor keeps taking
messages (their effects queue behind). Nothing already done is done again: a run whose
engine finished is never restarted because its finish hit a database error.
"""

from __future__ import annotations

import collections
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import pykka

from runtime.engine import CancelOutcome, EngineSession, RunContext, UsageReported
from runtime.logs import bind as bind_log_context
from runtime.runs import states
from runtime.runs.deps import RunDeps
from runtime.runs.effects import (
    Answer,
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
from runtime.runs.events import EventDraft, RunEvent, make_event
from runtime.runs.lifecycle import RunLifecycle, terminal_event
from runtime.runs.messages import (
    ActorDone,
    ActorFailed,
    Cancel,
    CancelAnswered,
    EngineBatch,
    EngineEnded,
    Execute,
    ExpireApproval,
    Fenced,
    GiveUp,
    HandBack,
    Reconcile,
    Recover,
    Resume,
    RetryEffects,
    StopOverdue,
    Submit,
)
from runtime.runs.pump import pump
from runtime.usage import usage_updated
from storage.errors import StatementRefused, StorageError
from storage.runs import RunTakenOver, StatusEvents

log = logging.getLogger(__name__)

RETRY_FIRST_SECONDS = 0.1
RETRY_MAX_SECONDS = 5.0


def is_transient(exc: BaseException) -> bool:
    """Whether an effect that raised ``exc`` may succeed when retried: database and
    connection errors and timeouts, not a statement Postgres refused for its data
    (:class:`storage.errors.StatementRefused`, classified by ``storage.database.translate``:
    constraint violations, data exceptions), programming errors or file system errors (a
    workspace that is not a directory stays so: the run must fail, not retry forever;
    storage already turns a lost database connection into StorageError)."""
    if isinstance(exc, StatementRefused):
        return False
    return isinstance(exc, (StorageError, TimeoutError, ConnectionError))


class RunActor(pykka.ThreadingActor):
    """The actor of one run. Created by the Supervisor only.

    Args:
        run_id: the run it owns.
        deps: shared collaborators (loop port, stores, writer, engines, hooks).
        supervisor: the Supervisor's ref, told :class:`ActorDone` / :class:`ActorFailed`.
        generation: restart generation (0 for the first actor of a run).
    """

    use_daemon_thread = True

    def __init__(
        self, run_id: uuid.UUID, deps: RunDeps, supervisor: pykka.ActorRef, generation: int
    ) -> None:
        super().__init__()
        self.run_id = run_id
        self.deps = deps
        self.supervisor = supervisor
        self.generation = generation
        self.lifecycle = RunLifecycle(redact=deps.redact, tool_settings=deps.tool_settings)
        self.next_seq = 0
        # The engine session this actor runs; ``token`` tells its pump's messages from
        # those of an earlier session (ignored).
        self.token = 0
        self.ctx: RunContext | None = None
        self.session: EngineSession | None = None
        self.task: Any = None  # concurrent future of the pump task
        self.finished = False
        # Effects waiting for a retry after a database error (the failed one first).
        self.pending: collections.deque[Effect] | None = None
        self.retry_delay = RETRY_FIRST_SECONDS
        self.claim_retried = False  # a claim failed once: its commit may have been lost
        # The run's claim token this actor writes under (docs/design.md 9: fencing): from its
        # claim, or the row it loaded; every write it makes is refused once it moved on.
        # -1 until known: refused.
        self.fence = -1
        # The engine's result of a run without a workspace, recorded by the terminal status
        # write (see RecordOutcome in _perform), None when there is none to record.
        self.outcome: dict[str, Any] | None = None

    # ---- pykka hooks ---------------------------------------------------------------------

    def on_start(self) -> None:
        bind_log_context(run_id=self.run_id)  # this thread's log lines concern this run

    def on_receive(self, message: Any) -> Any:
        try:
            self._dispatch(message)
        except Exception:
            raise  # pykka calls on_failure, which answers waiters and tells the Supervisor
        except BaseException as exc:  # never let one escape: pykka would stop every actor
            raise RuntimeError(f"run actor interrupted: {exc!r}") from exc

    def on_stop(self) -> None:
        if self.task is not None:  # process shutdown: stop the engine with the actor
            self.task.cancel()

    def on_failure(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        try:
            self._carry_out(self.lifecycle.crashed())
        except Exception:
            log.exception("run %s: cleaning up after a crash failed", self.run_id)
        self._tell_supervisor(ActorFailed(self.run_id, self.generation, repr(exc)))

    # ---- messages -> lifecycle inputs -------------------------------------------------

    def _dispatch(self, message: Any) -> None:
        lc = self.lifecycle
        match message:
            case Execute(row=row) if row is not None:
                self._adopt(row)
                effects = lc.execute_claimed(row)
            case Execute():
                effects = lc.execute(0)
            case Recover(attempt=attempt):
                effects = lc.execute(attempt)
            case EngineBatch(token=token, events=events) if token == self.token:
                had_text = lc.mapper.saw_text
                effects = lc.engine_events(events)
                if lc.mapper.saw_text and not had_text and lc.row is not None:
                    self.deps.metrics.run_first_delta(lc.row)
            case EngineEnded(token=token, error=error) if token == self.token:
                self.task = None
                effects = lc.engine_ended(error)
            case CancelAnswered(token=token, outcome=outcome) if token == self.token:
                effects = lc.cancel_answered(outcome)
            case StopOverdue(token=token) if token == self.token:
                effects = lc.stop_overdue()
            case Cancel(reply=reply, discard=discard):
                effects = lc.cancel(reply, discard=discard)
            case Resume(payload=payload, reply=reply, approval=approval, key=key):
                effects = lc.resume(payload, reply, approval, key)
            case ExpireApproval():
                effects = lc.expire_approval()
            case Reconcile(policy=policy):
                effects = lc.reconcile(policy)
            case GiveUp(error=error):
                effects = lc.give_up(error)
            case HandBack(policy=policy):
                effects = lc.hand_back(policy)
            case Fenced(token=token) if token == self.fence:
                effects = self._fenced("its events were refused")
            case Fenced():
                effects = []  # about a claim this actor no longer holds
            case RetryEffects():
                queue, self.pending = self.pending, None
                if queue:
                    self._run_queue(queue)
                return
            case EngineBatch() | EngineEnded() | CancelAnswered() | StopOverdue():
                effects = []  # from an engine session this actor no longer runs
            case _:
                raise TypeError(f"RunActor got an unknown message: {message!r}")
        self._carry_out(effects)

    # ---- effects ---------------------------------------------------------------------

    def _carry_out(self, effects: list[Effect]) -> None:
        """Perform effects in order; an effect's result goes back to the lifecycle at
        once, and the effects it returns run before the rest of the list. While an effect
        waits for its retry, new effects queue behind it (the order is kept)."""
        if self.pending is not None:
            self.pending.extend(effects)
            return
        self._run_queue(collections.deque(effects))

    def _run_queue(self, queue: collections.deque[Effect]) -> None:
        while queue:
            effect = queue[0]
            try:
                follow = self._perform(effect)
            except Exception as exc:
                if not is_transient(exc):
                    raise
                self._retry_later(queue, effect, exc)
                return
            queue.popleft()
            queue.extendleft(reversed(follow))
            self.retry_delay = RETRY_FIRST_SECONDS

    def _retry_later(
        self, queue: collections.deque[Effect], effect: Effect, exc: Exception
    ) -> None:
        """Keep ``queue`` (``effect`` first) and retry it after the back-off delay."""
        delay, self.retry_delay = self.retry_delay, min(self.retry_delay * 2, RETRY_MAX_SECONDS)
        log.warning("run %s: %s failed (%s: %s); retrying in %.1f s", self.run_id,
                    type(effect).__name__, type(exc).__name__, exc, delay)  # fmt: skip
        self.pending = queue
        if isinstance(effect, Claim):
            self.claim_retried = True
        self.deps.port.call(_later, self.deps.port, delay, self.actor_ref, RetryEffects())

    def _perform(self, effect: Effect) -> list[Effect]:
        deps, lc = self.deps, self.lifecycle
        match effect:
            case Emit(drafts=drafts):
                self._emit(drafts)
            case Load():
                row = self._db(self._flush_then(deps.runs.get(self.run_id)))
                if row is not None:
                    self.next_seq = row["last_event_seq"] + 1
                    bind_log_context(tenant_id=row["tenant_id"], app_id=row["published_app_id"])
                    if self.task is None:  # no engine of ours runs: write under this token
                        self.fence = row["claim_token"]
                return lc.loaded(row)
            case Claim(take_over=take_over, expected=expected):
                if take_over:
                    claim = deps.runs.reclaim(self.run_id, deps.node_id, deps.lease_seconds,
                                              expected=expected, token=self.fence)  # fmt: skip
                else:
                    claim = deps.runs.claim(
                        self.run_id, deps.node_id, deps.lease_seconds, expected=expected
                    )
                row = self._db(self._flush_then(claim))
                if row is None and self.claim_retried and not take_over:
                    row = self._db(self._own_claim())
                if row is not None:
                    self._adopt(row)
                return lc.claimed(row)
            case StartEngine(attempt=attempt):
                return self._start_engine(attempt)
            case WriteStatus():
                try:
                    written = self._write_status(effect)
                except StatementRefused as exc:  # refused for its data: every time
                    log.error("run %s: writing %s was refused by the database (%s)",
                              self.run_id, effect.target, exc)  # fmt: skip
                    self.outcome = None
                    return lc.status_refused(effect.target, exc.reason)
                return lc.status_written(written)
            case RecordOutcome(outcome=outcome):
                assert lc.row is not None
                if not deps.hooks.has_workspace(lc.row, self.ctx):
                    # Nothing happens between this record and the status write (no
                    # auto-apply), so the write records it in its own statement: the run is
                    # never final without it, and one round trip and loop hop are saved.
                    self.outcome = outcome
                    return []
                record = deps.runs.record_outcome(self.run_id, outcome, token=self.fence)
                if not self._db(self._flush_then(record)):
                    return self._fenced("recording the engine's result was refused")
            case AutoApply():
                return self._auto_apply()
            case SetEngineRef(ref=ref):
                if not self._db(deps.runs.set_engine_ref(self.run_id, ref, token=self.fence)):
                    return self._fenced("recording the engine reference was refused")
            case RecordUsage(report=report):
                return self._record_usage(report)
            case RecordRevisions(checkpoint=checkpoint, result=result):
                recorded = deps.runs.record_checkpoint(
                    self.run_id, checkpoint, result, token=self.fence
                )
                if not self._db(recorded):
                    return self._fenced("recording a checkpoint was refused")
            case CancelEngine():
                self._request_engine_cancel()
            case StopEngine():
                if self.task is not None:
                    self.task.cancel()  # EngineEnded follows once the engine stopped
                self.deps.port.call(
                    _later, deps.port, deps.cancel_grace_seconds, self.actor_ref,
                    StopOverdue(self.token),
                )  # fmt: skip
            case DetachEngine():
                if self.task is not None:
                    self.task.cancel()
                    self.task = None
                self.token += 1  # ignore anything the old session still says
            case Answer(reply=reply, row=row):
                reply.set(row)
            case Refuse(reply=reply, error=error):
                reply.fail(error)
            case Resubmit():
                assert lc.row is not None
                self._tell_supervisor(Submit(self.run_id, lc.row["tenant_id"]))
            case WakeSession(session_id=session_id):
                after = self._db(deps.runs.next_in_session(session_id))
                if after is not None:
                    self._tell_supervisor(Submit(after["id"], after["tenant_id"]))
            case ReleaseWorkspace():
                assert lc.row is not None
                if deps.hooks.has_workspace(lc.row, self.ctx):
                    self._db(deps.hooks.release(lc.row, self.ctx))
            case Finish():
                if not self.finished:
                    self.finished = True
                    self._tell_supervisor(ActorDone(self.run_id, self.generation))
        return []

    def _db(self, coro: Any, timeout: float = 60.0) -> Any:
        return self.deps.port.run(coro, timeout)

    def _adopt(self, row: dict[str, Any]) -> None:
        """This actor now holds the run as ``row`` shows it (claimed or taken over)."""
        self.next_seq = row["last_event_seq"] + 1
        self.fence = row["claim_token"]
        bind_log_context(tenant_id=row["tenant_id"], app_id=row["published_app_id"])

    def _fenced(self, why: str) -> list[Effect]:
        """Another node took the run (its claim token moved on past ours): stop the
        engine, write nothing more, answer waiters with the run as it is."""
        effects = self.lifecycle.fenced()
        if effects:
            log.warning("run %s: another node took this run over (%s under claim token %d); "
                        "stopping its engine here", self.run_id, why, self.fence)  # fmt: skip
        return effects

    async def _own_claim(self) -> dict[str, Any] | None:
        """After a retried claim found the run no longer queued: the first attempt may have
        committed with its answer lost. A run ``running`` under this node's lease is then
        ours (one actor per run per process): take it, so it is not left running."""
        deps = self.deps
        row = await deps.runs.get(self.run_id)
        if row is None or row["status"] != states.RUNNING or row["lease_owner"] != deps.node_id:
            return None
        return await deps.runs.reclaim(
            self.run_id,
            deps.node_id,
            deps.lease_seconds,
            expected=(states.RUNNING,),
            token=row["claim_token"],
        )  # fmt: skip

    async def _flush_then(self, coro: Any) -> Any:
        """Persist the run's submitted events first, so the row read or claimed after it
        has the ``last_event_seq`` this actor's numbering continues from."""
        try:
            await self.deps.writer.flush(self.run_id)
        except BaseException:
            coro.close()
            raise
        return await coro

    def _emit(self, drafts: tuple[EventDraft, ...]) -> None:
        if not drafts:
            return
        row = self.lifecycle.row
        assert row is not None
        if self.next_seq == 0:  # a command actor: continue after the stored events
            self.next_seq = row["last_event_seq"] + 1
        events = self._number(list(drafts), row, self.next_seq)
        self.next_seq += len(events)
        self.deps.port.call(self.deps.writer.submit, events)

    def _number(self, drafts: list[EventDraft], row: dict[str, Any], first: int) -> list[RunEvent]:
        """Encode ``drafts`` as the run's events ``first``, ``first + 1``, ..."""
        now = datetime.now(UTC)
        return [
            make_event(draft, run_id=self.run_id, app_id=row["published_app_id"],
                       seq=first + i, ts=now, fence=self.fence)
            for i, draft in enumerate(drafts)
        ]  # fmt: skip

    def _write_status(self, write: WriteStatus) -> dict[str, Any] | None:
        """The conditional status write and its events, in one transaction, after every
        event submitted before; the new events are published once committed."""
        runs, run_id, broker = self.deps.runs, self.run_id, self.deps.broker
        written: list[RunEvent] = []

        def events_for(row: dict[str, Any]) -> list[Any]:
            drafts = list(write.events)
            if write.terminal is not None:
                drafts.append(terminal_event(row, write.terminal))
            written[:] = self._number(drafts, row, row["last_event_seq"] + 1)
            return [event.row for event in written]

        token, outcome = self.fence, self.outcome
        # how many events_for builds: the status statement counts them in last_event_seq
        events = StatusEvents(len(write.events) + (write.terminal is not None), events_for)

        async def run() -> dict[str, Any] | None:
            await self.deps.writer.flush(run_id)
            turns = None if write.session_turns is None else list(write.session_turns)
            if write.target == states.PAUSED:
                row = await runs.pause(
                    run_id, expected=write.expected, token=token,
                    checkpoint=write.checkpoint or {}, output=write.output or {},
                    events=events, approval_timeout=write.approval_timeout,
                    session_turns=turns,
                )  # fmt: skip
            elif write.if_expired:
                row = await runs.expire_approval(
                    run_id, write.target, expected=write.expected, token=token,
                    error=write.error, events=events,
                )  # fmt: skip
            elif write.target == states.QUEUED:
                row = await runs.requeue(
                    run_id, expected=write.expected, token=token,
                    resume_payload=write.resume_payload, events=events,
                )  # fmt: skip
            else:
                row = await runs.finish(
                    run_id, write.target, expected=write.expected, token=token,
                    error=write.error, output=write.output, events=events,
                    session_turns=turns, outcome=outcome,
                )  # fmt: skip
            if row is not None and written:
                broker.publish(written)
            return row

        row = self._db(run())
        if states.is_terminal(write.target):
            self.outcome = None  # recorded, or refused (the run moved on)
        if row is None:
            log.info("run %s: writing %s was refused (the run moved on: another writer "
                     "settled it, or another node holds it past claim token %d)",
                     run_id, write.target, token)  # fmt: skip
        else:
            self.next_seq = row["last_event_seq"] + 1
            self.fence = row["claim_token"]
            if write.target != states.QUEUED:  # this actor ended the run
                self.deps.metrics.run_finished(row)
                log.info("run ended %s", row["status"], extra={"engine": row["execution_engine"]})
        return row

    def _record_usage(self, report: UsageReported) -> list[Effect]:
        """Record a call's usage under this actor's claim token; a model call then gets its
        ``usage.updated`` event and its tokens counted (once: a retried write raised before
        this point). Refused: another node took the run (fenced)."""
        seconds = report.seconds
        row = self._db(
            self.deps.runs.record_usage(
                self.run_id, report.call_id, kind=report.kind, name=report.name,
                tokens=(report.prompt_tokens, report.completion_tokens, report.total_tokens),
                duration_ms=None if seconds is None else max(0, round(seconds * 1000)),
                token=self.fence,
            )
        )  # fmt: skip
        if row is None:
            return self._fenced("recording usage was refused")
        if report.kind == "model":
            self.deps.metrics.tokens(report.prompt_tokens, report.completion_tokens)
            self._emit((EventDraft("usage.updated", usage_updated(report, row)),))
        return []

    def _start_engine(self, attempt: int) -> list[Effect]:
        deps, lc = self.deps, self.lifecycle
        row = lc.row
        assert row is not None
        try:
            replayed, self.ctx = self._db(self._start_inputs(row, attempt))
            self.session = deps.engines[row["execution_engine"]].open(self.ctx)
        except Exception as exc:
            if is_transient(exc):
                raise  # retried: the engine has not started
            log.exception("run %s could not start its engine", self.run_id)
            return lc.engine_start_failed(str(exc) or type(exc).__name__)
        self.token += 1
        self.task = deps.port.spawn(
            pump(
                self.session,
                self.actor_ref,
                self.token,
                deps.coalesce_seconds,
                deps.writer.wait_for_room,
            )
        )
        log.info("run started (attempt %d)", attempt, extra={"engine": row["execution_engine"]})
        return lc.engine_started(replayed)

    async def _start_inputs(self, row: dict[str, Any], attempt: int) -> tuple[str, RunContext]:
        """What starting the engine needs, in one loop hop: the assistant text the log
        already holds for this turn (an interrupted attempt's, see EventMapper) and the
        engine's context.

        The text is read only when the log may hold some: ``row`` is the run as this actor
        claimed or loaded it (its claim token fences every other writer out since), so a
        log that then held nothing after ``run.accepted`` (seq 1, written with the run) has
        no text of an earlier attempt; this actor's own events before the engine starts
        carry no text. That saves a read of ``run_events`` (and the wait for this actor's
        ``plan.updated`` to be written) on every fresh run.
        """
        deps = self.deps
        replayed = ""
        if row["last_event_seq"] > 1:
            await deps.writer.flush(self.run_id)
            replayed = await deps.runs.turn_text(self.run_id)
        return replayed, await deps.hooks.build_context(row, attempt)

    def _auto_apply(self) -> list[Effect]:
        lc = self.lifecycle
        assert lc.row is not None
        if not self.deps.hooks.has_workspace(lc.row, self.ctx):
            return lc.applied(None)  # nothing to apply: no loop hop
        try:
            applied = self._db(
                self.deps.hooks.auto_apply(lc.row, self.ctx, token=self.fence), timeout=300
            )
        except RunTakenOver:  # fenced: the revision was rolled back with the refused link
            return self._fenced("linking the run's revision was refused")
        except Exception as exc:  # a validation error fails the run (contract 3.3)
            if is_transient(exc):
                raise  # retried: auto-apply is idempotent (an applied result is reused)
            log.info("auto-apply of run %s failed: %s", self.run_id, exc)
            detail = getattr(exc, "detail", None)
            return lc.apply_failed(
                str(exc) or type(exc).__name__, [detail] if isinstance(detail, dict) else []
            )
        return lc.applied(applied)

    def _request_engine_cancel(self) -> None:
        session, token, ref, port = self.session, self.token, self.actor_ref, self.deps.port
        assert session is not None

        async def ask_engine() -> None:
            try:
                outcome = await session.cancel()
            except Exception as exc:
                outcome = CancelOutcome(
                    False, [{"code": "ENGINE_CANCEL_FAILED", "message": f"{exc}"}]
                )
            try:
                ref.tell(CancelAnswered(token, outcome))
            except pykka.ActorDeadError:
                pass

        port.spawn(ask_engine())

    def _tell_supervisor(self, message: Any) -> None:
        try:
            self.supervisor.tell(message)
        except pykka.ActorDeadError:  # shutting down: the next start reconciles the run
            log.info("supervisor gone; run %s: dropped %r", self.run_id, message)


def _later(port: Any, delay: float, ref: pykka.ActorRef, message: Any) -> None:
    """On the loop: tell ``message`` to ``ref`` after ``delay`` seconds (if still alive)."""

    def send() -> None:
        try:
            ref.tell(message)
        except pykka.ActorDeadError:
            pass

    port.loop.call_later(delay, send)
