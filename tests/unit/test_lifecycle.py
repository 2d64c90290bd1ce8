"""The run lifecycle as a plain object: no HTTP, no threads, no Postgres.

Each test plays the RunActor's part by hand: it feeds the lifecycle commands, engine
reports and the results of the effects it asked for, and checks the effects that come back.
``Table`` plays the status column: a write lands only from an expected status, as the
conditional UPDATEs in storage/queries/runs.sql do.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from runtime.engine import (
    CancelOutcome,
    Completed,
    Delta,
    EngineRef,
    Failed,
    Paused,
    RevisionsRecorded,
    ToolFinished,
    Transcript,
)
from runtime.runs import states
from runtime.runs.deps import AppliedRevision
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
    ApprovalInvalid,
    ApprovalNotPending,
    RunActorFailed,
    RunNotFound,
    RunNotPaused,
    RunUnresponsive,
)
from runtime.runs.events import EventDraft
from runtime.runs.lifecycle import RESTARTED_MESSAGE, Phase, RunLifecycle, terminal_event
from runtime.runs.resume_keys import ResumeKey

RUN_ID = uuid.uuid4()
APP_ID = uuid.uuid4()


def make_row(status: str, **extra: Any) -> dict[str, Any]:
    """A run row with the columns the lifecycle and the run object read."""
    row: dict[str, Any] = {
        "id": RUN_ID, "status": status, "execution_engine": "native",
        "surface": "published_app_coding_agent", "published_app_id": APP_ID,
        "base_revision_id": None, "result_revision_id": None, "checkpoint_revision_id": None,
        "requested_model_id": None, "resolved_model_id": None, "error_message": None,
        "created_at": datetime(2026, 1, 1, tzinfo=UTC), "started_at": None,
        "completed_at": None, "input_params": {"input": "make it blue"}, "last_event_seq": 1,
    }  # fmt: skip
    row.update(extra)
    return row


class Table:
    """The run's status column: applies a write only from an expected status (the
    conditional UPDATE), and checks every write against the transition table."""

    def __init__(self, status: str, **extra: Any) -> None:
        self.row = make_row(status, **extra)
        self.stored: list[EventDraft] = []  # events written with the status writes

    def write(self, effect: WriteStatus) -> dict[str, Any] | None:
        assert set(effect.expected) <= states.TRANSITIONS[effect.target], effect
        if self.row["status"] not in effect.expected:
            return None
        self.row = {**self.row, "status": effect.target, "error_message": effect.error}
        if effect.resume_payload is not None:  # runs_requeue: COALESCE($2, resume_payload)
            self.row["resume_payload"] = effect.resume_payload
        self.stored.extend(effect.events)
        if effect.terminal is not None:
            self.stored.append(terminal_event(self.row, effect.terminal))
        return self.row

    @property
    def types(self) -> list[str]:
        return [draft.type for draft in self.stored]

    def claim(self, effect: Claim) -> dict[str, Any] | None:
        if not effect.take_over:
            assert set(effect.expected) <= states.TRANSITIONS[states.RUNNING]
        if self.row["status"] not in effect.expected:
            return None
        self.row = {**self.row, "status": states.RUNNING}
        return self.row


class Waiter:
    """Stands in for a Reply: the lifecycle only passes it through to the effects."""

    def set(self, value: Any) -> None:  # pragma: no cover - never called here
        raise AssertionError("the lifecycle must not answer by itself")

    def fail(self, exc: BaseException) -> None:  # pragma: no cover
        raise AssertionError("the lifecycle must not answer by itself")


def kinds(effects: list[Effect]) -> list[type]:
    return [type(e) for e in effects]


def emitted(effects: list[Effect]) -> list[str]:
    return [d.type for e in effects if isinstance(e, Emit) for d in e.drafts]


def running(table: Table | None = None) -> tuple[RunLifecycle, Table]:
    """A lifecycle whose engine runs (attempt 0), and its table."""
    table = table or Table(states.QUEUED)
    lc = RunLifecycle()
    [claim] = lc.execute(0)
    assert claim == Claim(False, (states.QUEUED,))
    effects = lc.claimed(table.claim(claim))
    assert kinds(effects) == [Emit, StartEngine]
    assert effects[0].drafts[0].payload == {"summary": "Coding-agent run started"}  # type: ignore[union-attr]
    assert lc.engine_started() == []
    assert lc.phase is Phase.RUNNING
    return lc, table


def write(lc: RunLifecycle, table: Table, effects: list[Effect]) -> list[Effect]:
    """Carry out the trailing WriteStatus of ``effects`` and return what follows it."""
    assert isinstance(effects[-1], WriteStatus), effects
    return lc.status_written(table.write(effects[-1]))


# ---- execution -----------------------------------------------------------------------------


def test_a_run_completes_with_the_contract_terminal_sequence() -> None:
    lc, table = running()
    assert emitted(lc.engine_events((Delta("Done: "), Delta("blue")))) == ["assistant.delta"] * 2
    assert lc.engine_events((Completed({"last_agent_output": "blue"}),)) == []
    record = {"kind": "completed", "output": {"last_agent_output": "blue"}, "saw_text": True}
    assert lc.engine_ended(None) == [RecordOutcome(record), AutoApply()]  # recorded first
    revision = AppliedRevision(uuid.uuid4(), uuid.uuid4(), "src/main.tsx", 3)
    [effect] = lc.applied(revision)
    assert isinstance(effect, WriteStatus)
    assert (effect.target, effect.expected) == (states.COMPLETED, (states.RUNNING,))
    assert effect.output == {"last_agent_output": "blue"}
    assert write(lc, table, [effect]) == [ReleaseWorkspace(), Finish()]
    # one transaction: the terminal sequence of contract 3.3 with the status (text streamed)
    assert table.types == ["revision.created", "checkpoint.created", "run.completed"]
    assert table.stored[-1].payload["status"] == "completed"
    assert lc.phase is Phase.DONE


def restarted(replayed: str) -> RunLifecycle:
    """A lifecycle whose restarted engine runs; the log already holds ``replayed``."""
    lc = RunLifecycle()
    [claim] = lc.execute(0)
    lc.claimed(Table(states.QUEUED).claim(claim))
    assert lc.engine_started(replayed) == []
    return lc


def texts(effects: list[Effect]) -> list[str]:
    return [
        d.payload["content"] for e in effects if isinstance(e, Emit) for d in e.drafts
        if d.type == "assistant.delta"
    ]  # fmt: skip


def test_a_restarted_attempt_does_not_log_the_interrupted_attempts_text_again() -> None:
    lc = restarted("Hello wor")
    # the new attempt repeats the logged text in other chunks, then goes on
    assert lc.engine_events((Delta("Hel"), Delta("lo "))) == []
    assert texts(lc.engine_events((Delta("wo"), Delta("rld"), Delta("!")))) == ["ld", "!"]
    lc.engine_events((Completed({"last_agent_output": "Hello world!"}),))
    lc.engine_ended(None)
    [write_status] = lc.applied(None)
    # text was streamed (by the earlier attempt): no fallback delta in the terminal sequence
    assert isinstance(write_status, WriteStatus)
    assert [d.type for d in write_status.events] == []


def test_a_restarted_attempt_that_says_something_else_is_logged_with_a_diagnostic() -> None:
    lc = restarted("Hello wor")
    effects = lc.engine_events((Delta("Hello"), Delta(" there")))
    drafts = [d for e in effects if isinstance(e, Emit) for d in e.drafts]
    assert [d.type for d in drafts] == ["plan.updated", "assistant.delta"]
    assert drafts[0].diagnostics[0]["code"] == "RUN_REPLY_DIVERGED"
    assert drafts[1].payload == {"content": "there"}  # from where it differs
    assert texts(lc.engine_events((Delta(" now"),))) == [" now"]  # reported once


def test_a_first_attempt_logs_every_chunk() -> None:
    lc = restarted("")
    assert texts(lc.engine_events((Delta("a"), Delta("a")))) == ["a", "a"]


def test_a_run_that_streamed_no_text_gets_the_fallback_assistant_text() -> None:
    lc, table = running()
    lc.engine_events((Completed({"last_agent_output": "All set."}),))
    lc.engine_ended(None)
    write(lc, table, lc.applied(None))  # nothing changed: no revision
    assert table.types == ["assistant.delta", "run.completed"]
    assert table.stored[0].payload == {"content": "All set."}


def test_engine_failure_and_silent_end_fail_the_run() -> None:
    lc, table = running()
    lc.engine_events((Failed("model said no", [{"code": "MODEL_ERROR", "message": ""}]),))
    effects = lc.engine_ended(None)
    [effect] = effects
    assert isinstance(effect, WriteStatus) and effect.error == "model said no"
    assert (effect.target, effect.expected) == (states.FAILED, states.sources(states.FAILED))
    write(lc, table, effects)
    [event] = table.stored
    assert event.type == "run.failed"
    assert event.diagnostics == ({"code": "MODEL_ERROR", "message": "model said no"},)

    lc, table = running()
    effects = lc.engine_ended(None)  # no terminal event from the engine: fail closed
    assert effects[-1].error == "Engine stopped without reporting a result"  # type: ignore[union-attr]
    lc, table = running()
    assert lc.engine_ended("boom")[-1].error == "boom"  # type: ignore[union-attr]


def test_a_status_write_refused_for_its_data_fails_the_run_once() -> None:
    """Postgres refusing a status write for its data refuses it every time: the run fails
    with RUN_STATUS_UNSTORABLE (without the output), and a refused failure crashes."""
    lc, table = running()
    lc.engine_events((Completed({"last_agent_output": "x"}),))
    lc.engine_ended(None)  # RecordOutcome, AutoApply
    [effect] = lc.applied(None)
    assert isinstance(effect, WriteStatus) and effect.output == {"last_agent_output": "x"}
    [failure] = lc.status_refused(effect.target, "CheckViolationError")
    assert isinstance(failure, WriteStatus)
    assert failure.target == states.FAILED and failure.output is None
    assert "could not be stored" in (failure.error or "")
    assert "CheckViolationError" in (failure.error or "")
    assert failure.terminal is not None
    assert failure.terminal[0]["code"] == "RUN_STATUS_UNSTORABLE"
    with pytest.raises(RuntimeError, match="refused too"):
        lc.status_refused(failure.target, "CheckViolationError")


def test_auto_apply_refusal_fails_the_run() -> None:
    lc, table = running()
    lc.engine_events((Completed({}),))
    lc.engine_ended(None)
    detail = {"code": "REVISION_CONFLICT", "message": "draft moved"}
    effects = lc.apply_failed("draft moved", [detail])
    write(lc, table, effects)
    assert table.types == ["run.failed"]
    assert table.row["status"] == states.FAILED


def test_engine_start_failure_fails_the_run() -> None:
    table = Table(states.QUEUED)
    lc = RunLifecycle()
    lc.claimed(table.claim(lc.execute(0)[0]))  # type: ignore[arg-type]
    effects = lc.engine_start_failed("no workspace")
    assert effects[-1].error == "no workspace"  # type: ignore[union-attr]
    write(lc, table, effects)
    assert table.types == ["run.failed"]


def test_a_run_someone_else_claimed_is_left_alone() -> None:
    lc = RunLifecycle()
    lc.execute(0)
    assert lc.claimed(None) == [Finish()]


def test_engine_refs_and_checkpoints_are_recorded_in_order_with_the_events() -> None:
    lc, _ = running()
    checkpoint = uuid.uuid4()
    effects = lc.engine_events(
        (
            Delta("a"),
            EngineRef("ses_1"),
            RevisionsRecorded(checkpoint, None),
            ToolFinished("coding_agent_create_checkpoint", "s1", {"ok": True}),
        )
    )
    assert kinds(effects) == [Emit, SetEngineRef, RecordRevisions, Emit]
    assert effects[1] == SetEngineRef("ses_1")
    assert effects[2] == RecordRevisions(checkpoint, None)


def test_pause_writes_paused_and_ends_the_stream_with_run_completed() -> None:
    lc, table = running()
    lc.engine_events((Paused({"step": 2}, {"messages": []}),))
    effects = lc.engine_ended(None)
    assert effects == [WriteStatus(states.PAUSED, (states.RUNNING,), checkpoint={"step": 2},
                                   output={"messages": []}, terminal=())]  # fmt: skip
    write(lc, table, effects)
    assert table.types == ["run.completed"]


APPROVAL = {"request_id": "req-1", "tool": "coding_agent_apply_patch", "arguments": {},
            "editable": True}  # fmt: skip


def test_a_pause_on_approval_stores_the_request_emits_it_and_starts_the_timeout() -> None:
    params = {"input": "x", "context": {"approval_timeout_seconds": 60}}
    lc, table = running(Table(states.QUEUED, input_params=params))
    lc.engine_events((Paused({"native": {"version": 1}}, approval=APPROVAL),))
    [effect] = lc.engine_ended(None)
    assert isinstance(effect, WriteStatus)
    assert effect.checkpoint == {"native": {"version": 1}, "approval": APPROVAL}
    assert effect.approval_timeout == 60.0
    write(lc, table, [effect])
    assert table.types == ["approval.requested", "run.completed"]
    assert table.stored[0].payload == {**APPROVAL, "timeout_seconds": 60.0}


def test_resume_of_a_run_paused_on_approval_checks_the_decision() -> None:
    table = Table(states.PAUSED, checkpoint={"approval": APPROVAL})
    for approval, error in (
        (None, ApprovalInvalid),
        ({"request_id": "other", "decision": "approve"}, ApprovalNotPending),
    ):
        lc = RunLifecycle()
        lc.resume({}, Waiter(), approval)
        refuse, finish = lc.loaded(table.row)
        assert isinstance(refuse, Refuse) and isinstance(refuse.error, error)
        assert finish == Finish()
    lc = RunLifecycle()
    decision = {"request_id": "req-1", "decision": "reject", "message": "no"}
    lc.resume({"k": 1}, Waiter(), decision)
    [effect] = lc.loaded(table.row)
    assert effect == WriteStatus(
        states.QUEUED, (states.PAUSED,), resume_payload={"k": 1, "approval": decision}
    )


def test_an_expired_pause_fails_closed_only_while_still_paused() -> None:
    params = {"input": "x", "context": {"approval_timeout_seconds": 5}}
    table = Table(states.PAUSED, checkpoint={"approval": APPROVAL}, input_params=params)
    lc = RunLifecycle()
    assert lc.expire_approval() == [Load()]
    [effect] = lc.loaded(table.row)
    assert isinstance(effect, WriteStatus) and effect.if_expired
    assert (effect.target, effect.expected) == (states.FAILED, (states.PAUSED,))
    write(lc, table, [effect])
    assert table.types == ["run.failed"]
    assert table.stored[0].diagnostics[0]["code"] == "APPROVAL_TIMEOUT"
    # Resumed meanwhile: nothing to do.
    lc = RunLifecycle()
    lc.expire_approval()
    assert lc.loaded(make_row(states.QUEUED)) == [Finish()]


# ---- cancel --------------------------------------------------------------------------------


def test_cancel_before_start_cancels_the_queued_run() -> None:
    table = Table(states.QUEUED)
    lc = RunLifecycle()
    waiter = Waiter()
    assert lc.cancel(waiter) == [Load()]
    effects = lc.loaded(table.row)
    [effect] = effects
    assert isinstance(effect, WriteStatus) and effect.target == states.CANCELLED
    assert effect.expected == states.sources(states.CANCELLED)
    final = write(lc, table, effects)
    assert table.types == ["run.failed"]
    assert table.stored[0].diagnostics == ({"message": "run cancelled"},)
    assert final == [Answer(waiter, table.row), ReleaseWorkspace(), Finish()]
    # the execution that was waiting for a slot finds nothing to claim
    late = RunLifecycle()
    assert late.claimed(table.claim(late.execute(0)[0])) == [Finish()]  # type: ignore[arg-type]


def test_cancel_mid_run_waits_for_the_engine_to_stop() -> None:
    lc, table = running()
    first, second = Waiter(), Waiter()
    assert lc.cancel(first) == [CancelEngine()]
    assert lc.cancel(second) == []  # one engine cancel for both
    assert lc.cancel_answered(CancelOutcome(True)) == [StopEngine()]
    assert table.row["status"] == states.RUNNING  # nothing written before the engine stopped
    effects = lc.engine_ended(None)
    assert effects[0] == DetachEngine() and effects[1].target == states.CANCELLED  # type: ignore[union-attr]
    final = write(lc, table, effects)
    assert table.types == ["run.failed"]
    assert final == [
        Answer(first, table.row),
        Answer(second, table.row),
        ReleaseWorkspace(),
        Finish(),
    ]
    assert lc.engine_events((Completed({}),)) == []  # a late result changes nothing


def test_cancel_when_the_engine_ended_before_answering() -> None:
    lc, table = running()
    lc.cancel(Waiter())
    assert lc.engine_ended(None) == []  # still waiting for the engine's answer
    effects = lc.cancel_answered(CancelOutcome(True))
    assert effects[0] == DetachEngine() and effects[-1].target == states.CANCELLED  # type: ignore[union-attr]


def test_an_unconfirmed_cancel_fails_the_run() -> None:
    lc, table = running()
    lc.cancel(Waiter())
    diagnostics = [{"code": "OPENCODE_CANCEL_UNCONFIRMED", "message": "abort not confirmed"}]
    lc.cancel_answered(CancelOutcome(False, diagnostics))
    effects = lc.engine_ended(None)
    assert effects[-1].error == "abort not confirmed"  # type: ignore[union-attr]
    write(lc, table, effects)
    assert table.row["status"] == states.FAILED
    assert table.stored[0].diagnostics == tuple(diagnostics)


def test_an_engine_that_does_not_stop_fails_the_run_after_the_grace() -> None:
    lc, table = running()
    lc.cancel(Waiter())
    lc.cancel_answered(CancelOutcome(True))
    effects = lc.stop_overdue()
    assert effects[0] == DetachEngine()
    assert effects[-1].target == states.FAILED  # type: ignore[union-attr]
    write(lc, table, effects)
    assert lc.engine_ended(None) == []  # the engine's late end is ignored


def test_cancel_of_a_terminal_run_answers_it_unchanged() -> None:
    for status in (states.COMPLETED, states.FAILED, states.CANCELLED, states.RUNNING):
        lc, waiter, row = RunLifecycle(), Waiter(), make_row(status)
        lc.cancel(waiter)
        # a terminal run's workspace is released; a running one (another node's) keeps it
        release = [ReleaseWorkspace()] if states.is_terminal(status) else []
        assert lc.loaded(row) == [Answer(waiter, row), *release, Finish()]


def test_cancel_of_a_missing_run() -> None:
    lc, waiter = RunLifecycle(), Waiter()
    lc.cancel(waiter)
    [refuse, finish] = lc.loaded(None)
    assert isinstance(refuse, Refuse) and isinstance(refuse.error, RunNotFound)
    assert finish == Finish()


def test_a_lost_write_race_emits_nothing_and_answers_with_the_run_as_it_is() -> None:
    table = Table(states.PAUSED)
    lc, waiter = RunLifecycle(), Waiter()
    lc.cancel(waiter)
    effects = lc.loaded(table.row)
    table.row = make_row(states.FAILED)  # another writer settled it meanwhile
    assert write(lc, table, effects) == [Load()]
    assert lc.loaded(table.row) == [Answer(waiter, table.row), ReleaseWorkspace(), Finish()]


# ---- resume, reconcile, restart ------------------------------------------------------


def test_resume_requeues_a_paused_run_with_its_payload() -> None:
    table = Table(states.PAUSED)
    lc, waiter = RunLifecycle(), Waiter()
    assert lc.resume({"approve": True}, waiter) == [Load()]
    effects = lc.loaded(table.row)
    payload = {"approve": True}
    assert effects == [WriteStatus(states.QUEUED, (states.PAUSED,), resume_payload=payload)]
    assert write(lc, table, effects) == [Answer(waiter, table.row), Resubmit(), Finish()]


def test_resume_of_a_run_that_is_not_paused_is_refused() -> None:
    lc, _ = running()
    [refuse] = lc.resume({}, Waiter())
    assert isinstance(refuse, Refuse) and isinstance(refuse.error, RunNotPaused)
    for status in (states.QUEUED, states.COMPLETED, states.RUNNING):
        lc = RunLifecycle()
        lc.resume({}, Waiter())
        refuse, *_, finish = lc.loaded(make_row(status))
        assert isinstance(refuse, Refuse) and isinstance(refuse.error, RunNotPaused)
        assert finish == Finish()
    # paused when read, cancelled before the write: refused, not answered as resumed
    table = Table(states.PAUSED)
    lc = RunLifecycle()
    lc.resume({}, Waiter())
    effects = lc.loaded(table.row)
    table.row = make_row(states.CANCELLED)
    refuse, finish = write(lc, table, effects)
    assert isinstance(refuse, Refuse) and isinstance(refuse.error, RunNotPaused)


def test_a_keyed_resume_that_loses_the_race_to_itself_is_answered_with_the_run() -> None:
    """Two nodes' actors handle the same keyed resume (a client retrying on another node):
    one write wins; the other, losing, reads the run again and finds its own key."""
    table = Table(states.PAUSED)
    key = ResumeKey.of("user:a", "k1", "f")
    here, there, waiter_here, waiter_there = RunLifecycle(), RunLifecycle(), Waiter(), Waiter()
    here.resume({"go": 1}, waiter_here, None, key)
    there.resume({"go": 1}, waiter_there, None, key)
    mine, theirs = here.loaded(table.row), there.loaded(table.row)
    assert write(there, table, theirs)[0] == Answer(waiter_there, table.row)
    assert write(here, table, mine) == [Load()]  # lost: decide again on the row as it is
    answer, *_ = here.loaded(table.row)
    assert answer == Answer(waiter_here, table.row)
    # Without a key it cannot tell: refused as before.
    table = Table(states.PAUSED)
    here, there = RunLifecycle(), RunLifecycle()
    here.resume({}, waiter_here)
    there.resume({}, waiter_there)
    mine, theirs = here.loaded(table.row), there.loaded(table.row)
    write(there, table, theirs)
    refuse, *_ = write(here, table, mine)
    assert isinstance(refuse, Refuse) and isinstance(refuse.error, RunNotPaused)


def test_reconcile_fails_an_orphaned_run_by_default() -> None:
    table = Table(states.RUNNING)
    lc = RunLifecycle()
    assert lc.reconcile("fail") == [Load()]
    effects = lc.loaded(table.row)
    assert effects[-1].error == RESTARTED_MESSAGE  # type: ignore[union-attr]
    write(lc, table, effects)
    assert table.row["status"] == states.FAILED
    assert table.stored[0].diagnostics[0]["code"] == "RUN_INTERRUPTED"


def test_reconcile_requeues_under_the_requeue_policy() -> None:
    table = Table(states.RUNNING)
    lc = RunLifecycle()
    lc.reconcile("requeue")
    effects = lc.loaded(table.row)
    [effect] = effects
    assert isinstance(effect, WriteStatus)
    assert (effect.target, effect.expected) == (states.QUEUED, (states.RUNNING,))
    assert write(lc, table, effects) == [Resubmit(), Finish()]
    assert table.types == ["plan.updated"]


def test_reconcile_leaves_a_run_executing_here_or_already_settled() -> None:
    lc, _ = running()
    assert lc.reconcile("fail") == []
    lc = RunLifecycle()
    lc.reconcile("fail")
    assert lc.loaded(make_row(states.COMPLETED)) == [ReleaseWorkspace(), Finish()]


def test_a_restarted_actor_takes_its_running_run_over() -> None:
    table = Table(states.RUNNING)
    lc = RunLifecycle()
    assert lc.execute(2) == [Load()]
    [claim] = lc.loaded(table.row)
    assert claim == Claim(True, (states.RUNNING,))
    effects = lc.claimed(table.claim(claim))  # type: ignore[arg-type]
    assert effects[0].drafts[0].payload == {"summary": "Coding-agent run restarted",  # type: ignore[union-attr]
                                            "attempt": 2}  # fmt: skip
    assert effects[1] == StartEngine(2)
    # a restart after the run was requeued claims it like a new run
    lc = RunLifecycle()
    lc.execute(1)
    assert lc.loaded(make_row(states.QUEUED)) == [Claim(False, (states.QUEUED,))]


def test_a_crash_answers_every_waiter_and_give_up_fails_the_run() -> None:
    lc, table = running()
    waiter = Waiter()
    lc.cancel(waiter)
    effects = lc.crashed()
    assert effects[0] == DetachEngine()
    assert isinstance(effects[1], Refuse) and isinstance(effects[1].error, RunActorFailed)
    # the Supervisor's last resort, on a new lifecycle
    lc = RunLifecycle()
    assert lc.give_up("boom") == [Load()]
    effects = lc.loaded(table.row)
    write(lc, table, effects)
    assert table.row["status"] == states.FAILED
    assert table.stored[-1].diagnostics[0]["code"] == "RUN_ACTOR_CRASHED"


def test_a_cancel_during_a_resume_is_carried_out_after_it() -> None:
    table = Table(states.PAUSED)
    lc, resumer, canceller = RunLifecycle(), Waiter(), Waiter()
    lc.resume({}, resumer)
    effects = lc.loaded(table.row)
    assert lc.cancel(canceller) == []  # busy: queued behind the resume
    after = write(lc, table, effects)
    assert after[:2] == [Answer(resumer, table.row), Resubmit()]
    assert after[2:] == [Load()]  # the cancel starts over on the queued run
    final = write(lc, table, lc.loaded(table.row))
    assert final[-3:] == [Answer(canceller, table.row), ReleaseWorkspace(), Finish()]
    assert table.row["status"] == states.CANCELLED


def test_a_repeated_decision_is_answered_with_the_run_in_every_phase() -> None:
    """A retry of a decision that went through (its first answer was a 503) gets the run:
    while the requeue write is under way it is asked to retry; once the run is queued,
    running or ended it is answered with the row. Another decision stays refused."""
    pending = {"request_id": "r1", "tool": "coding_agent_delete_file",
               "arguments": {"path": "src/a.tsx"}, "editable": True}  # fmt: skip
    approval = {"request_id": "r1", "decision": "approve", "arguments": {"path": "src/b.tsx"}}
    table = Table(states.PAUSED, checkpoint={"approval": pending}, resume_payload=None)
    lc, first = RunLifecycle(), Waiter()
    lc.resume({}, first, approval)
    effects = lc.loaded(table.row)
    [busy] = lc.resume({}, Waiter(), approval)  # the first one's write is under way
    assert isinstance(busy, Refuse) and isinstance(busy.error, RunUnresponsive)
    assert write(lc, table, effects)[:2] == [Answer(first, table.row), Resubmit()]
    assert table.row["resume_payload"] == {"approval": approval}

    [claim] = lc.execute(0)
    lc.claimed(table.claim(claim))  # type: ignore[arg-type]
    assert lc.phase is Phase.STARTING
    again = Waiter()
    assert lc.resume({}, again, approval) == [Answer(again, table.row)]
    for other in (
        {"request_id": "r1", "decision": "reject"},
        {**approval, "arguments": {"path": "src/c.tsx"}},
        {**approval, "message": "also this"},
    ):
        [refuse] = lc.resume({}, Waiter(), other)
        assert isinstance(refuse, Refuse) and isinstance(refuse.error, RunNotPaused)

    idle, late = RunLifecycle(), Waiter()  # another actor, the run queued (or ended)
    assert idle.resume({}, late, approval) == [Load()]
    assert idle.loaded(table.row)[0] == Answer(late, table.row)
    assert idle.resume({}, Waiter(), {"request_id": "r1", "decision": "reject"}) == [Load()]
    [refuse, *_] = idle.loaded(table.row)
    assert isinstance(refuse, Refuse) and isinstance(refuse.error, RunNotPaused)


# ---- the one transition table ---------------------------------------------------------


def test_sources_come_from_the_table_and_refuse_other_transitions() -> None:
    assert states.sources(states.RUNNING) == (states.QUEUED,)
    assert states.sources(states.QUEUED, only=(states.PAUSED,)) == (states.PAUSED,)
    with pytest.raises(ValueError):
        states.sources(states.QUEUED, only=(states.COMPLETED,))


def test_every_status_write_in_sql_takes_its_sources_as_a_parameter() -> None:
    """storage/queries/runs.sql follows the table: a statement that sets ``status`` names
    no source status itself; it takes them as ``status = ANY($n::text[])``."""
    sql = (Path(__file__).parents[2] / "storage" / "queries" / "runs.sql").read_text()
    queries = dict(re.findall(r"-- name: (\w+)\n(.*?)(?=\n-- |\Z)", sql, flags=re.S))
    writers = {name: text for name, text in queries.items() if re.search(r"SET\s+status", text)}
    assert set(writers) == {
        "runs_claim", "runs_claim_next", "runs_finish", "runs_pause", "runs_requeue",
        "runs_expire_approval",
    }  # fmt: skip
    for name, text in writers.items():
        where = text.split("WHERE", 1)[1]
        assert re.search(r"status = ANY\(\$\d+::text\[\]\)", where), name
        assert not re.search(r"status\s*(=|IN)\s*\(?'", where), name


# ---- exactly once ----------------------------------------------------------------------


def test_a_run_with_recorded_work_is_finished_without_its_engine() -> None:
    """An actor restarted after the engine's result was recorded (the old one crashed in
    auto-apply or the final write) finishes the run from the record."""
    record = {"kind": "completed", "output": {"last_agent_output": "done"}, "saw_text": False}
    table = Table(states.RUNNING, engine_outcome=record)
    lc = RunLifecycle()
    lc.execute(1)
    claim = lc.loaded(table.row)
    assert lc.claimed(table.claim(claim[0])) == [AutoApply()]  # type: ignore[arg-type]
    assert not any(isinstance(e, StartEngine) for e in claim)
    assert write(lc, table, lc.applied(None)) == [ReleaseWorkspace(), Finish()]
    # the text was never streamed: the fallback comes from the recorded output, once
    assert table.types == ["assistant.delta", "run.completed"]
    assert table.stored[0].payload == {"content": "done"}


def test_reconcile_finishes_recorded_work_whatever_the_policy() -> None:
    record = {"kind": "completed", "output": {}, "saw_text": True}
    for policy in ("fail", "requeue"):
        table = Table(states.RUNNING, engine_outcome=record)
        lc = RunLifecycle()
        lc.reconcile(policy)
        [claim] = lc.loaded(table.row)
        assert claim == Claim(True, (states.RUNNING,))
        assert lc.claimed(table.claim(claim)) == [AutoApply()]  # type: ignore[arg-type]
        write(lc, table, lc.applied(None))
        assert table.row["status"] == states.COMPLETED and table.types == ["run.completed"]


# ---- shutdown: hand-back -----------------------------------------------------------------


def test_hand_back_requeues_a_run_once_its_engine_stopped() -> None:
    lc, table = running()
    assert lc.hand_back("requeue") == [CancelEngine()]
    assert lc.cancel_answered(CancelOutcome(True)) == [StopEngine()]
    assert table.row["status"] == states.RUNNING  # nothing written before the engine stopped
    effects = lc.engine_ended(None)
    assert effects[0] == DetachEngine()
    [write_effect] = effects[1:]
    assert isinstance(write_effect, WriteStatus)
    assert (write_effect.target, write_effect.expected) == (states.QUEUED, (states.RUNNING,))
    assert write(lc, table, effects) == [Finish()]  # not resubmitted here: shutting down
    assert table.types == ["plan.updated"]
    assert table.stored[0].diagnostics[0]["code"] == "RUN_REQUEUED"


def test_hand_back_under_the_fail_policy_and_unconfirmed_stops_fail_the_run() -> None:
    lc, table = running()
    lc.hand_back("fail")
    lc.cancel_answered(CancelOutcome(True))
    write(lc, table, lc.engine_ended(None))
    assert table.row["status"] == states.FAILED
    assert table.stored[0].diagnostics[0]["code"] == "RUN_INTERRUPTED"

    lc, table = running()
    lc.hand_back("requeue")
    lc.cancel_answered(CancelOutcome(False, [{"code": "OPENCODE_CANCEL_UNCONFIRMED",
                                              "message": "abort not confirmed"}]))  # fmt: skip
    write(lc, table, lc.engine_ended(None))
    assert table.row["status"] == states.FAILED  # never requeued while it may still run


def test_hand_back_keeps_a_result_the_engine_reported_first() -> None:
    lc, table = running()
    lc.hand_back("requeue")
    lc.engine_events((Delta("done"), Completed({})))
    lc.engine_ended(None)
    effects = lc.cancel_answered(CancelOutcome(True))
    assert kinds(effects) == [DetachEngine, RecordOutcome, AutoApply]
    write(lc, table, lc.applied(None))
    assert table.row["status"] == states.COMPLETED


def test_hand_back_leaves_runs_that_are_not_executing_here() -> None:
    assert RunLifecycle().hand_back("requeue") == []
    lc, table = running()
    lc.engine_events((Completed({}),))
    lc.engine_ended(None)  # finishing on its own
    assert lc.hand_back("requeue") == []


# ---- sessions (docs/design.md 10) ------------------------------------------------------------


SESSION_ID = uuid.uuid4()
SESSION_INPUT = {"input": "make it blue", "messages": [{"role": "user", "content": "make it blue"}]}


def session_run() -> tuple[RunLifecycle, Table]:
    table = Table(states.QUEUED, session_id=SESSION_ID, session_seq=2, input_params=SESSION_INPUT)
    return running(table)


def test_a_session_run_finishes_with_its_turns_and_wakes_the_session() -> None:
    lc, table = session_run()
    call = {"role": "assistant", "content": None, "tool_calls": [{"id": "a"}]}
    lc.engine_events((Delta("looking"), Transcript((call,)), Delta("Blue now.")))
    lc.engine_events((Completed({"last_agent_output": "Blue now."}),))
    turns = [*SESSION_INPUT["messages"], call, {"role": "assistant", "content": "Blue now."}]
    record_outcome, apply = lc.engine_ended(None)
    assert record_outcome == RecordOutcome(  # a restarted actor finishes with the same turns
        {"kind": "completed", "output": {"last_agent_output": "Blue now."}, "saw_text": True,
         "session_turns": turns}
    )  # fmt: skip
    [effect] = lc.applied(None)
    assert isinstance(effect, WriteStatus) and effect.session_turns == tuple(turns)
    assert write(lc, table, [effect]) == [WakeSession(SESSION_ID), ReleaseWorkspace(), Finish()]


def test_a_cancelled_session_run_keeps_its_work_unless_discarded() -> None:
    lc, table = session_run()
    lc.engine_events((Delta("half"),))
    assert lc.cancel(Waiter()) == [CancelEngine()]
    assert lc.cancel_answered(CancelOutcome(True)) == [StopEngine()]
    assert lc.engine_ended(None) == [DetachEngine(), AutoApply()]  # its edits: a revision
    revision = AppliedRevision(uuid.uuid4(), uuid.uuid4(), "src/main.tsx", 3)
    [effect] = lc.applied(revision)
    assert isinstance(effect, WriteStatus) and effect.target == states.CANCELLED
    assert effect.session_turns == (*SESSION_INPUT["messages"],
                                    {"role": "assistant", "content": "half"})  # fmt: skip
    effects = write(lc, table, [effect])
    assert table.types == ["revision.created", "checkpoint.created", "run.failed"]
    assert kinds(effects)[0] is WakeSession

    lc, table = session_run()  # rollback: nothing of it is kept
    lc.engine_events((Delta("half"),))
    lc.cancel(Waiter(), discard=True)
    lc.cancel_answered(CancelOutcome(True))
    effects = lc.engine_ended(None)
    assert isinstance(effects[-1], WriteStatus) and effects[-1].session_turns == ()  # cleared
    write(lc, table, effects)
    assert table.types == ["run.failed"] and table.row["status"] == states.CANCELLED

    lc, table = running()  # a run without a session: exactly as before
    lc.cancel(Waiter())
    lc.cancel_answered(CancelOutcome(True))
    effects = lc.engine_ended(None)
    assert kinds(effects) == [DetachEngine, WriteStatus]
    assert effects[-1].session_turns is None  # type: ignore[union-attr]
    assert WakeSession not in kinds(write(lc, table, effects))


def test_a_paused_session_run_keeps_its_turns_and_a_rollback_clears_them() -> None:
    lc, table = session_run()
    call = {"role": "assistant", "content": None, "tool_calls": [{"id": "a"}]}
    lc.engine_events((Transcript((call,)), Paused({"native": {}})))
    [pause] = lc.engine_ended(None)
    assert isinstance(pause, WriteStatus) and pause.target == states.PAUSED
    assert pause.session_turns == (*SESSION_INPUT["messages"], call)
    write(lc, table, [pause])

    command = RunLifecycle()  # a cancel of the paused run: its turns stay as stored
    command.cancel(Waiter())
    [cancel] = command.loaded(table.row)
    assert isinstance(cancel, WriteStatus) and cancel.session_turns is None
    rollback = RunLifecycle()  # a rollback forgets them
    rollback.cancel(Waiter(), discard=True)
    [cancel] = rollback.loaded(table.row)
    assert isinstance(cancel, WriteStatus) and cancel.session_turns == ()


# ---- the run queue and fencing (docs/design.md 9) ------------------------------------


def test_a_claimed_run_starts_without_another_claim() -> None:
    """The claim query moved the run to running: the actor starts the engine at once."""
    lc = RunLifecycle()
    effects = lc.execute_claimed(make_row(states.RUNNING))
    assert [type(e) for e in effects] == [Emit, StartEngine]
    assert lc.phase is Phase.STARTING


def test_a_claimed_run_with_recorded_work_is_finished_from_it() -> None:
    record = {"kind": "completed", "output": {}, "saw_text": True}
    lc = RunLifecycle()
    assert lc.execute_claimed(make_row(states.RUNNING, engine_outcome=record)) == [AutoApply()]


def test_a_fenced_run_stops_its_engine_and_writes_nothing_more() -> None:
    """Another node took the run: the engine is detached, the run re-read, waiters get it
    as it is, and no status is written by this actor."""
    table = Table(states.QUEUED)
    lc = RunLifecycle()
    lc.execute_claimed(table.claim(Claim(False, states.sources(states.RUNNING))) or {})
    lc.engine_started()
    waiter = Waiter()
    assert lc.cancel(waiter) == [CancelEngine()]
    effects = lc.fenced()
    assert effects == [DetachEngine(), Load()]
    taken = {**table.row, "lease_owner": "node-b"}
    settled = lc.loaded(taken)
    assert settled == [Answer(waiter, taken), Finish()]
    assert not [e for e in [*effects, *settled] if isinstance(e, WriteStatus)]
    # late engine reports change nothing
    assert lc.engine_ended(None) == []
    assert lc.fenced() == []


def test_fencing_is_ignored_while_no_engine_or_write_is_under_way() -> None:
    lc = RunLifecycle()
    assert lc.fenced() == []  # idle
    lc.reconcile("fail")
    assert lc.phase is Phase.LOADING
    assert lc.fenced() == []  # the load settles by itself
