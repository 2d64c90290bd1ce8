"""RunActor: one pykka ThreadingActor per live run, owning its state machine and engine.

Only this actor changes its run's status, always through the transition table
(:mod:`runtime.runs.states`) with conditional UPDATEs. It does no network I/O itself: database
calls run on the asyncio loop through :class:`runtime.bridge.LoopPort` (blocking this
actor's thread, never the loop), and the engine session runs on the loop as a task
(:mod:`runtime.runs.pump`) that reports back by ``tell``.

Terminal sequences follow contract 3.3; cancel is verified (DESIGN.md 8.3): ``cancelled``
is written only once the engine task has ended.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import pykka

from runtime.assistant_text import final_text
from runtime.engine import (
    CancelOutcome,
    Completed,
    EngineRef,
    EngineSession,
    Failed,
    Paused,
)
from runtime.runs import states
from runtime.runs.deps import RunDeps
from runtime.runs.events import EventDraft, RunEvent, make_event
from runtime.runs.messages import (
    ActorDone,
    ActorFailed,
    Cancel,
    CancelAnswered,
    EngineBatch,
    EngineEnded,
    Execute,
    GiveUp,
    Reconcile,
    Recover,
    Resume,
    RunNotPaused,
    StopOverdue,
    Submit,
)
from runtime.runs.pump import pump
from runtime.runs.run_object import run_object
from runtime.runs.translate import EventMapper
from runtime.runs.workspaces import workspace_key

log = logging.getLogger(__name__)

RESTARTED_MESSAGE = "Run was interrupted: the Runwright process running it stopped or restarted"
CANCEL_UNCONFIRMED_DEFAULT = "Engine cancellation could not be confirmed"


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
        self.row: dict[str, Any] | None = None
        self.next_seq = 0
        self.token = 0  # identifies the current engine session; stale pump messages are ignored
        self.session: EngineSession | None = None
        self.task: Any = None  # concurrent future of the pump task
        self.mapper: EventMapper | None = None
        self.outcome: Completed | Failed | Paused | None = None
        self.ctx: Any = None
        self.cancel_replies: list[Any] = []
        self.cancel_outcome: CancelOutcome | None = None
        self.cancelling = False
        self.done = False

    # ---- pykka hooks ---------------------------------------------------------------------

    def on_receive(self, message: Any) -> Any:
        try:
            return self._dispatch(message)
        except Exception as exc:
            self._fail_reply(message, exc)
            raise
        except BaseException as exc:  # never let one escape: pykka would stop every actor
            self._fail_reply(message, exc)
            raise RuntimeError(f"run actor interrupted: {exc!r}") from exc

    @staticmethod
    def _fail_reply(message: Any, exc: BaseException) -> None:
        """A command whose handling crashed still gets an answer (no caller waits in vain)."""
        reply = getattr(message, "reply", None)
        if reply is not None:
            reply.fail(RuntimeError(f"the run's actor failed: {exc!r}"))

    def on_stop(self) -> None:
        if self.task is not None:  # process shutdown: stop the engine with the actor
            self.task.cancel()

    def on_failure(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if self.task is not None:
            self.task.cancel()
        for reply in self.cancel_replies:
            reply.fail(RuntimeError("the run's actor crashed"))
        self._tell_supervisor(ActorFailed(self.run_id, self.generation, repr(exc)))

    def _workspace_key(self) -> tuple[uuid.UUID, uuid.UUID | None] | None:
        assert self.row is not None
        return workspace_key(self.deps.engines, self.row)

    def _tell_supervisor(self, message: Any) -> None:
        try:
            self.supervisor.tell(message)
        except pykka.ActorDeadError:  # shutting down: the next start reconciles the run
            log.info("supervisor gone; run %s: dropped %r", self.run_id, message)

    # ---- dispatch --------------------------------------------------------------------------

    def _dispatch(self, message: Any) -> None:
        match message:
            case Execute():
                self._execute(attempt=0)
            case Recover(attempt=attempt):
                self._execute(attempt=attempt)
            case EngineBatch(token=token, events=events) if token == self.token:
                self._on_engine_events(events)
            case EngineEnded(token=token) if token == self.token:
                self._on_engine_ended(message)
            case CancelAnswered(token=token, outcome=outcome) if token == self.token:
                self._on_cancel_answered(outcome)
            case StopOverdue(token=token) if token == self.token and self.task is not None:
                self._finish_cancel(
                    CancelOutcome(
                        False, [{"code": "ENGINE_STOP_TIMEOUT",
                                 "message": "Engine did not stop after cancellation"}],
                    )
                )  # fmt: skip
            case Cancel(reply=reply):
                self._cancel(reply)
            case Resume(payload=payload, reply=reply):
                self._resume(payload, reply)
            case Reconcile(policy=policy):
                self._reconcile(policy)
            case GiveUp(error=error):
                self._give_up(error)
            case EngineBatch() | EngineEnded() | CancelAnswered() | StopOverdue():
                pass  # from an engine session this actor no longer runs
            case _:
                raise TypeError(f"RunActor got an unknown message: {message!r}")

    # ---- helpers ---------------------------------------------------------------------------

    def _db(self, coro: Any, timeout: float = 60.0) -> Any:
        return self.deps.port.run(coro, timeout)

    def _load(self) -> dict[str, Any] | None:
        """Re-read the run, after every event already submitted for it is persisted."""
        deps = self.deps

        async def load() -> dict[str, Any] | None:
            await deps.writer.flush(self.run_id)
            return await deps.runs.get(self.run_id)

        self.row = self._db(load())
        if self.row is not None:
            self.next_seq = self.row["last_event_seq"] + 1
        return self.row

    async def _flush_and_claim(self) -> dict[str, Any] | None:
        """``queued -> running`` in one hop to the loop (the first attempt: a new run, or
        one queued again by resume or the requeue policy). As in :meth:`_load`, the run's
        pending events are persisted first, so the claimed row's ``last_event_seq`` is
        where this actor's numbering continues."""
        deps = self.deps
        await deps.writer.flush(self.run_id)
        return await deps.runs.claim(self.run_id, deps.node_id, deps.lease_seconds)

    def _emit(self, drafts: list[EventDraft]) -> None:
        if not drafts:
            return
        assert self.row is not None
        now = datetime.now(UTC)
        events: list[RunEvent] = []
        for draft in drafts:
            events.append(
                make_event(
                    draft,
                    run_id=self.run_id,
                    app_id=self.row["published_app_id"],
                    seq=self.next_seq,
                    ts=now,
                )
            )
            self.next_seq += 1
        self.deps.port.call(self.deps.writer.submit, events)

    def _done(self) -> None:
        if not self.done:
            self.done = True
            self._tell_supervisor(ActorDone(self.run_id, self.generation))

    def _terminal_event(self, row: dict[str, Any], diagnostics: list[dict[str, Any]]) -> None:
        """Contract 3.3: run.completed for completed/paused, run.failed otherwise."""
        kind = (
            "run.completed" if row["status"] in (states.COMPLETED, states.PAUSED) else "run.failed"
        )
        self._emit([EventDraft(kind, run_object(row), tuple(diagnostics))])

    # ---- execution -------------------------------------------------------------------------

    def _execute(self, *, attempt: int) -> None:
        deps = self.deps
        if attempt:
            row = self._load()
            if row is None:
                self._done()
                return
            # A restarted actor takes over its running run; anything else must claim it.
            take = deps.runs.reclaim if row["status"] == states.RUNNING else deps.runs.claim
            claimed = self._db(take(self.run_id, deps.node_id, deps.lease_seconds))
        else:
            claimed = self._db(self._flush_and_claim())
        if claimed is None:  # gone, cancelled before it started, or someone else owns it
            self._done()
            return
        self.row = claimed
        self.next_seq = claimed["last_event_seq"] + 1
        summary = "Coding-agent run started" if attempt == 0 else "Coding-agent run restarted"
        plan: dict[str, Any] = {"summary": summary}
        if attempt:
            plan["attempt"] = attempt
        self._emit([EventDraft("plan.updated", plan)])
        try:
            self.ctx = self._db(deps.hooks.build_context(claimed, attempt))
            engine = deps.engines[claimed["execution_engine"]]
            self.session = engine.open(self.ctx)
        except Exception as exc:
            log.exception("run %s could not start its engine", self.run_id)
            self._fail(str(exc) or type(exc).__name__, [])
            return
        self.mapper = EventMapper()
        self.token += 1
        self.task = deps.port.spawn(
            pump(self.session, self.actor_ref, self.token, deps.coalesce_seconds)
        )

    def _on_engine_events(self, events: tuple[Any, ...]) -> None:
        assert self.mapper is not None
        drafts: list[EventDraft] = []
        for event in events:
            if isinstance(event, EngineRef):
                self._db(self.deps.runs.set_engine_ref(self.run_id, event.ref))
            elif isinstance(event, (Completed, Failed, Paused)):
                self.outcome = event
            else:
                drafts.append(self.mapper.draft(event))  # raises TypeError on unknown events
        self._emit(drafts)

    def _on_engine_ended(self, ended: Any) -> None:
        self.task = None
        if self.cancelling:
            if self.cancel_outcome is not None:
                self._finish_cancel(self.cancel_outcome)
            return  # wait for the engine's answer to cancel()
        if ended.error is not None:
            self._fail(ended.error, [])
        elif isinstance(self.outcome, Completed):
            self._complete(self.outcome)
        elif isinstance(self.outcome, Paused):
            self._pause(self.outcome)
        elif isinstance(self.outcome, Failed):
            self._fail(self.outcome.message, self.outcome.diagnostics)
        else:
            self._fail("Engine stopped without reporting a result", [])

    def _complete(self, outcome: Completed) -> None:
        deps = self.deps
        assert self.row is not None and self.mapper is not None
        drafts: list[EventDraft] = []
        try:
            applied = self._db(deps.hooks.auto_apply(self.row, self.ctx), timeout=300)
        except Exception as exc:  # a validation error fails the run (contract 3.3)
            log.info("auto-apply of run %s failed: %s", self.run_id, exc)
            detail = getattr(exc, "detail", None)
            self._fail(str(exc) or type(exc).__name__, [detail] if isinstance(detail, dict) else [])
            return
        if applied is not None:
            drafts.append(EventDraft("revision.created", applied.revision_payload()))
            drafts.append(EventDraft("checkpoint.created", applied.checkpoint_payload()))
        if not self.mapper.saw_text:
            text = final_text(outcome.output, str(self.row["input_params"].get("input", "")))
            drafts.append(EventDraft("assistant.delta", {"content": text}))
        self._emit(drafts)
        row = self._db(
            deps.runs.finish(
                self.run_id, states.COMPLETED, expected=states.sources(states.COMPLETED),
                output=outcome.output,
            )
        )  # fmt: skip
        self._end(row, [])

    def _pause(self, outcome: Paused) -> None:
        row = self._db(
            self.deps.runs.pause(
                self.run_id, expected=states.sources(states.PAUSED),
                checkpoint=outcome.checkpoint, output=outcome.output,
            )
        )  # fmt: skip
        self._end(row, [])

    def _fail(self, message: str, diagnostics: list[dict[str, Any]]) -> None:
        redact = self.deps.redact
        message = redact(message)
        diagnostics = [
            {**d, "message": redact(d["message"])} if isinstance(d.get("message"), str) else d
            for d in diagnostics
        ]
        row = self._db(
            self.deps.runs.finish(
                self.run_id, states.FAILED, expected=states.sources(states.FAILED), error=message
            )
        )
        self._end(row, failure_diagnostics(message, diagnostics))

    def _end(self, row: dict[str, Any] | None, diagnostics: list[dict[str, Any]]) -> None:
        """Emit the terminal event for the written status, answer waiters, leave.

        ``row`` is None when the conditional write found the status already moved (another
        process reconciled the run): that writer emitted the terminal event, so no second
        one is emitted here; waiters get the run as it is.
        """
        if row is None:
            row = self._load()
        else:
            self.row = row
            self._terminal_event(row, diagnostics)
        if row is not None:
            for reply in self.cancel_replies:
                reply.set(row)
        self.cancel_replies.clear()
        self._done()

    # ---- commands ----------------------------------------------------------------------

    def _cancel(self, reply: Any) -> None:
        if self.task is not None:  # executing: verified cancel
            self.cancel_replies.append(reply)
            if not self.cancelling:
                self.cancelling = True
                self._request_engine_cancel()
            return
        row = self._load()
        if row is None:
            reply.fail(LookupError("run not found"))
            return
        if states.is_terminal(row["status"]) or row["status"] == states.RUNNING:
            # Terminal: idempotent (contract 1.7). Running with no engine here: it belongs
            # to another node; we cannot stop it, so report it unchanged.
            reply.set(row)
            self._done()
            return
        updated = self._db(
            self.deps.runs.finish(
                self.run_id, states.CANCELLED, expected=states.sources(states.CANCELLED)
            )
        )
        self.cancel_replies.append(reply)
        self._end(updated, [{"message": "run cancelled"}])

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
            ref.tell(CancelAnswered(token, outcome))

        port.spawn(ask_engine())

    def _on_cancel_answered(self, outcome: CancelOutcome) -> None:
        self.cancel_outcome = outcome
        if self.task is None:  # the engine already ended on its own
            self._finish_cancel(outcome)
            return
        self.task.cancel()  # cancels the pump task on the loop; EngineEnded follows
        ref, token = self.actor_ref, self.token
        self.deps.port.call(
            _later, self.deps.port, self.deps.cancel_grace_seconds, ref, StopOverdue(token)
        )

    def _finish_cancel(self, outcome: CancelOutcome) -> None:
        self.task = None
        self.token += 1  # ignore anything the old session still says
        if outcome.confirmed:
            row = self._db(
                self.deps.runs.finish(
                    self.run_id, states.CANCELLED, expected=states.sources(states.CANCELLED)
                )
            )
            self._end(row, [{"message": "run cancelled"}])
            return
        diagnostics = outcome.diagnostics or [{"message": CANCEL_UNCONFIRMED_DEFAULT}]
        message = str(diagnostics[0].get("message") or CANCEL_UNCONFIRMED_DEFAULT)
        self._fail(message, diagnostics)

    def _resume(self, payload: dict[str, Any], reply: Any) -> None:
        if self.task is not None:  # executing: certainly not paused
            reply.fail(RunNotPaused("Run is not paused"))
            return
        row = self._load()
        if row is None or row["status"] != states.PAUSED:
            reply.fail(RunNotPaused("Run is not paused"))
            self._done()
            return
        updated = self._db(
            self.deps.runs.requeue(self.run_id, expected=(states.PAUSED,), resume_payload=payload)
        )
        if updated is None:
            reply.fail(RunNotPaused("Run is not paused"))
        else:
            reply.set(updated)
            self._tell_supervisor(Submit(self.run_id, self._workspace_key()))
        self._done()

    def _reconcile(self, policy: str) -> None:
        if self.task is not None:  # executing here: the run is alive, not orphaned
            return
        row = self._load()
        if row is None or row["status"] != states.RUNNING:
            self._done()
            return
        if policy == "requeue":
            if (
                self._db(self.deps.runs.requeue(self.run_id, expected=(states.RUNNING,)))
                is not None
            ):
                self._emit(
                    [EventDraft("plan.updated", {"summary": "Run requeued after a restart"})]
                )
                self._tell_supervisor(Submit(self.run_id, self._workspace_key()))
            self._done()
            return
        self._fail(RESTARTED_MESSAGE, [{"code": "RUN_INTERRUPTED", "message": RESTARTED_MESSAGE}])

    def _give_up(self, error: str) -> None:
        self._load()
        message = f"Run actor crashed too many times: {error}"
        self._fail(message, [{"code": "RUN_ACTOR_CRASHED", "message": message}])


def _later(port: Any, delay: float, ref: pykka.ActorRef, message: Any) -> None:
    """On the loop: tell ``message`` to ``ref`` after ``delay`` seconds (if still alive)."""

    def send() -> None:
        try:
            ref.tell(message)
        except pykka.ActorDeadError:
            pass

    port.loop.call_later(delay, send)


def failure_diagnostics(message: str, extra: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``run.failed`` diagnostics: the first item's ``message`` is the run's error."""
    if extra:
        first = {**extra[0], "message": extra[0].get("message") or message}
        return [first, *extra[1:]]
    return [{"message": message}]
