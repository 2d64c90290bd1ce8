"""The Supervisor: claims queued runs, starts one RunActor per run, restarts crashed actors.

It keeps its own map ``run_id -> actor`` (pykka's registry is a linear scan), the node's
execution slots (:class:`Admission`) and a restart count per run. The run queue is the runs
table (docs/design.md 9): whenever this node has free slots and something may be waiting (a run
was submitted here, a slot freed while a run may wait for it, the periodic :class:`ClaimWork`
poll), it starts one
claim round on the loop (:class:`runtime.runs.queue.RunQueue`, one round at a time); the
rows claimed come back as :class:`Claimed` and each gets an actor. Lifecycle commands for a
run are forwarded to its live actor, or given to a new actor as its first message, so only
a run's own actor ever changes that run (house rule 1).
"""

from __future__ import annotations

import collections
import logging
import uuid
from dataclasses import dataclass
from typing import Any

import pykka

from runtime.runs.actor import RunActor
from runtime.runs.admission import Admission, Slot
from runtime.runs.deps import RunDeps
from runtime.runs.messages import (
    ActorDone,
    ActorFailed,
    Claimed,
    ClaimWork,
    Command,
    Drain,
    Execute,
    Fenced,
    GiveUp,
    HandBack,
    HandBackAll,
    Recover,
    Submit,
)
from runtime.runs.queue import RunQueue

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Live:
    ref: pykka.ActorRef
    generation: int
    slot: Slot | None  # None: a command-only actor, holding no execution slot


class Supervisor(pykka.ThreadingActor):
    """Args:
    deps: passed to every RunActor.
    queue: claims queued runs from the runs table for this node.
    max_live_runs: at most this many runs execute at once in this process.
    max_restarts: crashed actors of a run are restarted this many times, then the run fails.
    """

    use_daemon_thread = True

    def __init__(
        self,
        deps: RunDeps,
        queue: RunQueue,
        *,
        max_live_runs: int,
        max_restarts: int,
    ) -> None:
        super().__init__()
        self.deps = deps
        self.queue = queue
        self.max_restarts = max_restarts
        self.live: dict[uuid.UUID, _Live] = {}
        self.admission = Admission(max_live=max_live_runs)
        # One claim round at a time; `claim_again`: something asked for work meanwhile.
        self.claiming = False
        self.claim_again = False
        # Whether a queued run may be waiting for a slot here: a request for work found no
        # free slot, or the last round filled every slot it asked for, passed a run over
        # (its tenant's cap) or failed. Without that, a finished run's slot needs no claim
        # round: every run queued since (created, resumed, its session's turn come, or a
        # command actor here let go of it) asks for one itself (Submit, rw_work); a run
        # that became claimable otherwise is found by the periodic poll.
        self.may_wait = True
        # Commands for runs without an actor that arrived during a claim round: handled
        # once it answered (the round may have claimed the run; its actor takes them).
        self.held: list[tuple[uuid.UUID, Any]] = []
        self.restarts: collections.Counter[uuid.UUID] = collections.Counter()
        # Shutdown (docs/design.md section 9: SIGTERM drains): no new starts while draining; the
        # replies wait for the last executing run; a hand-back policy once the grace ended.
        self.draining = False
        self.drained: list[Any] = []
        self.handback: str | None = None

    def on_receive(self, message: Any) -> Any:
        try:
            self._dispatch(message)
            self.deps.metrics.actors(alive=len(self.live), executing=self.admission.live)
        except Exception:
            log.exception("supervisor failed to handle %r", message)
        except BaseException as exc:  # never escape: pykka would stop every actor
            log.error("supervisor interrupted by %r", exc)

    def on_stop(self) -> None:
        # Runs still executing stay `running` in Postgres; the next start reconciles them.
        for live in list(self.live.values()):
            try:
                live.ref.stop(block=True, timeout=10)
            except (pykka.ActorDeadError, pykka.Timeout):
                pass

    # ---- messages ----------------------------------------------------------------------

    def _dispatch(self, message: Any) -> None:
        match message:
            case Submit() | ClaimWork():
                self._fill_slots()
            case Claimed(rows=rows, asked=asked, failed=failed, passed_over=passed_over):
                self._claimed(rows, asked, failed, passed_over)
            case Fenced(run_id=run_id):
                live = self.live.get(run_id)
                if live is not None:
                    live.ref.tell(message)
            case Command(run_id=run_id, command=command):
                self._command(run_id, command)
            case ActorDone(run_id=run_id, generation=generation):
                self._retire(run_id, generation)
            case ActorFailed(run_id=run_id, generation=generation, error=error):
                self._restart(run_id, generation, error)
            case Drain(reply=reply):
                self.draining = True
                self.drained.append(reply)
                self._check_drained()
            case HandBackAll(policy=policy):
                self.handback = policy
                for live in self.live.values():
                    if live.slot is not None:
                        live.ref.tell(HandBack(policy))
            case _:
                log.warning("supervisor ignored %r", message)

    def _spawn(self, run_id: uuid.UUID, generation: int, first: Any, slot: Slot | None) -> None:
        """Start an actor for ``run_id`` and give it ``first``; ``slot`` is the execution
        slot it holds (already counted by the admission), or None for a command only."""
        ref = RunActor.start(run_id, self.deps, self.actor_ref, generation)
        self.live[run_id] = _Live(ref, generation, slot)
        ref.tell(first)

    def _fill_slots(self) -> None:
        """Claim queued runs for the free slots: one claim round on the loop at a time
        (another request meanwhile runs a new round once it answers). Runs whose actor
        handles a command here are passed over (they keep their place in the queue)."""
        if self.draining:  # the runs stay queued in Postgres for the others
            self._check_drained()
            return
        free = self.admission.free()
        if free <= 0:
            self.may_wait = True  # a finished run's slot is theirs
            return
        if self.claiming:
            self.claim_again = True
            return
        self.claiming, self.claim_again = True, False
        self.deps.port.spawn(self.queue.claim_round(free, tuple(self.live), self.actor_ref))

    def _claimed(
        self, rows: tuple[dict[str, Any], ...], asked: int, failed: bool, passed_over: bool
    ) -> None:
        """Start an actor for each run this node claimed; claim again while the round
        filled every slot it asked for (more may wait) or someone asked meanwhile."""
        self.claiming = False
        self.may_wait = failed or passed_over or len(rows) >= asked
        for row in rows:
            run_id = row["id"]
            if run_id in self.live:  # ours already (an adopted row after a lost answer)
                continue
            slot = Slot(run_id, row["tenant_id"])
            self.admission.hold(slot)
            self._spawn(run_id, 0, Execute(row), slot)
            if self.handback is not None:  # claimed as the drain began: hand it back too
                self.live[run_id].ref.tell(HandBack(self.handback))
        held, self.held = self.held, []
        for run_id, command in held:
            self._command(run_id, command)
        if failed:
            return  # the next poll tries again (the database is in trouble)
        if self.claim_again or (rows and len(rows) >= asked):
            self._fill_slots()

    def _check_drained(self) -> None:
        """Answer the drain once no run executes here any more."""
        if self.drained and not any(live.slot is not None for live in self.live.values()):
            replies, self.drained = self.drained, []
            for reply in replies:
                reply.set(None)

    def _command(self, run_id: uuid.UUID, command: Any) -> None:
        live = self.live.get(run_id)
        if live is not None:
            try:
                live.ref.tell(command)
                return
            except pykka.ActorDeadError:
                self._forget(run_id)
        if self.claiming:
            # The round under way may claim this queued run: wait for its answer, so the
            # command goes to the run's executor. A command actor started now would hold
            # the run's place in `live`, and the round's answer would then pass over the
            # run it claimed (`running` under this node's lease, executed by nobody): a
            # cancel would be fenced out, and a resume repeating an applied decision, or
            # refused, would strand the run.
            self.held.append((run_id, command))
            return
        # No actor: the run is queued (maybe waiting here), paused, terminal or orphaned.
        # A run waiting for a slot keeps its place: the command actor may leave it queued
        # (a refused resume), and if it cancels the run, the later claim simply finds it
        # no longer queued (_fill_slots skips it while the command actor is alive).
        self._spawn(run_id, 0, command, None)

    def _forget(self, run_id: uuid.UUID) -> _Live | None:
        live = self.live.pop(run_id, None)
        if live is not None and live.slot is not None:
            self.admission.release(live.slot)
        return live

    def _retire(self, run_id: uuid.UUID, generation: int) -> None:
        live = self.live.get(run_id)
        if live is None or live.generation != generation:
            return
        self._forget(run_id)
        self.restarts.pop(run_id, None)
        live.ref.stop(block=False)  # after any command already forwarded to it
        # A command actor's run may have been passed over (the claim's skip); a freed slot
        # needs a round only when a run may wait for it (see may_wait); a drain checks.
        if live.slot is None or self.may_wait or self.draining:
            self._fill_slots()

    def _restart(self, run_id: uuid.UUID, generation: int, error: str) -> None:
        live = self.live.get(run_id)
        if live is None or live.generation != generation:
            return
        self._forget(run_id)
        self.restarts[run_id] += 1
        count = self.restarts[run_id]
        if count > self.max_restarts:
            log.error("run %s: actor crashed %d times (%s); failing the run", run_id, count, error)
            self.restarts.pop(run_id, None)
            self._spawn(run_id, generation + 1, GiveUp(error), None)
        else:
            log.warning("run %s: actor crashed (%s); restart %d", run_id, error, count)
            # The restarted actor executes: it keeps the crashed one's slot, or takes one.
            slot = live.slot or Slot(run_id, None)
            self.admission.hold(slot)
            self._spawn(run_id, generation + 1, Recover(count), slot)
            if self.handback is not None:  # shutting down: the new actor hands it back too
                self.live[run_id].ref.tell(HandBack(self.handback))
        self._fill_slots()
