"""The run service: what HTTP handlers call to create, cancel and resume runs, and the
owner of the runtime's moving parts (broker, event writer, Supervisor, run queue, node
heartbeat).

Create follows contract 1.2's order of checks; cancel and resume are messages to the
Supervisor answered on a :class:`runtime.bridge.Reply` (never a pykka future on the loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pykka

from runtime import approvals, redact
from runtime.bridge import LoopPort, Reply, ReplyTimeout
from runtime.cluster import channels
from runtime.cluster.listener import Listener
from runtime.engine import Engine, EngineError, EngineUnavailable, PreflightRequest
from runtime.messages import prepare_messages
from runtime.metrics import Metrics
from runtime.model_credentials import ModelTargets
from runtime.paths import POLICY_CODE
from runtime.runs import states
from runtime.runs.broker import Broker
from runtime.runs.deps import RunDeps, RunHooks
from runtime.runs.errors import (
    AppNotFound,
    ApprovalInvalid,
    EngineRefused,
    InputRequired,
    ModelUnavailable,
    RevisionConflict,
    RunActorFailed,
    RunError,
    RunOwnerUnresponsive,
    RunUnresponsive,
    SessionNotFound,
    TenantQueueFull,
)
from runtime.runs.events import EventDraft, make_event
from runtime.runs.feed import EventFeed
from runtime.runs.leases import is_orphaned
from runtime.runs.messages import (
    Cancel,
    ClaimWork,
    Command,
    Drain,
    ExpireApproval,
    Fenced,
    HandBackAll,
    Reconcile,
    Resume,
    Submit,
)
from runtime.runs.queue import RunQueue
from runtime.runs.relay import CommandRelay
from runtime.runs.resume_keys import ResumeKey
from runtime.runs.run_object import run_object
from runtime.runs.supervisor import Supervisor
from runtime.runs.writer import EventWriter
from runtime.sessions.strategy import FollowUp, follow_up
from runtime.settings import Settings
from runtime.tasks import cancel_and_wait
from storage import apps as apps_store
from storage.database import Database
from storage.errors import StorageError
from storage.events import EventStore
from storage.idempotency import IdempotencyKey, IdempotencyKeyTaken
from storage.nodes import NodeHeartbeat
from storage.notify import notify
from storage.runs import SURFACE, RunStore
from storage.sessions import SessionStore

log = logging.getLogger(__name__)

COMMAND_TIMEOUT_SECONDS = 60.0
RELAY_HOPS = 3
"""How many owners a relayed cancel follows (a run taken over while it is relayed)."""

# A node row silent this long is deleted (node ids like <host>:<pid> are never reused; a
# run still naming such an owner is judged by its lease, long lapsed by then).
NODE_FORGET_SECONDS = 3600.0


@dataclass(frozen=True, slots=True)
class CreateRun:
    """A validated create request (contract 1.2) plus who asks.

    ``user_id`` is None for workload principals.
    """

    tenant_id: uuid.UUID
    user_id: uuid.UUID | None
    app_id: uuid.UUID
    input: str
    engine: str = "native"
    base_revision_id: uuid.UUID | None = None
    model_id: uuid.UUID | None = None
    messages: list[Any] = field(default_factory=list)
    script: list[dict[str, Any]] | None = None
    # Binds the new run to an Idempotency-Key in the insert itself (issue 10, item 5).
    idempotency: IdempotencyKey | None = None
    # Which tool calls wait for a person (runtime/approvals.py); None: the app's default.
    approval_policy: str | None = None
    # Seconds a pause on approval may last; None: RUNWRIGHT_APPROVAL_TIMEOUT_SECONDS.
    approval_timeout_seconds: float | None = None
    # The coding-agent session the run continues (docs/design.md 10) and what to do while a
    # run of it is active (None: the session's own strategy).
    session_id: uuid.UUID | None = None
    multitask_strategy: str | None = None
    # Gets the run object POSTed at the end (issue 12 item 5); checked by the caller.
    webhook: str | None = None
    # The native tools the run offers (runtime/tools/selection.py, already normalised by the
    # caller); None: all.
    tools: tuple[str, ...] | None = None


class RunService:
    """Owns the runtime of one process.

    Args:
        settings: the process settings.
        engines: engine name -> engine (``native``, ``opencode``, maybe ``scripted``).
        hooks: builds run contexts and applies finished workspaces.
        workspace_for: ``run_id -> Path | None``, where the run's workspace will be, for
            engine preflight.
        model_targets: the run's model with its credentials, for engines whose preflight
            reads it (None: such engines get ``model=None``).
        metrics: the app's metrics (default: a private registry nobody scrapes).
        listener: the node's LISTEN connection (``runtime/cluster/listener.py``): with it,
            streams here get events other nodes store (:mod:`runtime.runs.feed`) and
            cancel reaches runs other nodes execute (:mod:`runtime.runs.relay`).
    """

    def __init__(
        self,
        settings: Settings,
        engines: Mapping[str, Engine],
        hooks: RunHooks,
        workspace_for: Any = None,
        model_targets: ModelTargets | None = None,
        metrics: Metrics | None = None,
        listener: Listener | None = None,
    ) -> None:
        self.settings = settings
        self.listener = listener
        self.feed: EventFeed | None = None
        self.relay: CommandRelay | None = None
        self._unsubscribe: list[Any] = []
        self.model_targets = model_targets
        self.metrics = metrics or Metrics()
        self.engines = dict(engines)
        self.hooks = hooks
        self.workspace_for = workspace_for or (lambda run_id: None)
        self.broker = Broker(
            queue_max=settings.sse_queue_max, keepalive_seconds=settings.sse_keepalive_seconds
        )
        self._db: Database | None = None
        self.runs: RunStore
        self.events: EventStore
        self.writer: EventWriter
        self.supervisor: pykka.ActorRef | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._approval_sweep: asyncio.Task[None] | None = None
        self._poll: asyncio.Task[None] | None = None
        self._node: NodeHeartbeat | None = None
        self._draining = False

    # ---- lifecycle (lifespan steps) --------------------------------------------------

    async def start(self, db: Database, dsn: str | None = None) -> None:
        """Start broker, writer, engines and Supervisor; beat this node's row (over a
        connection of its own to ``dsn``; without one, no node row: only leases tell this
        node's liveness), reconcile runs a dead process left behind (docs/design.md 8.12)
        and claim queued work at once."""
        self._db = db
        # Status writes and the writer's batches announce their events with this node's
        # id: the feed ignores its own announcements (the writer publishes them here).
        self.runs = RunStore(db, self.settings.node_id)
        self.events = EventStore(db, self.settings.node_id)
        self.writer = EventWriter(
            self.events,
            self.broker,
            max_pending=self.settings.event_writer_max_pending,
            metrics=self.metrics,
            on_fenced=self._fenced,
        )
        self.metrics.watch(self.metrics.sse_subscribers, self.broker.subscriber_total)
        await self.broker.start()
        await self.writer.start()
        if self.listener is not None:
            await self._join_cluster(self.listener, db)
        for engine in self.engines.values():
            await engine.start()
        loop = asyncio.get_running_loop()
        deps = RunDeps(
            port=LoopPort(loop),
            runs=self.runs,
            writer=self.writer,
            broker=self.broker,
            engines=self.engines,
            hooks=self.hooks,
            node_id=self.settings.node_id,
            lease_seconds=self.settings.lease_seconds,
            coalesce_seconds=self.settings.event_coalesce_ms / 1000,
            cancel_grace_seconds=max(5.0, self.settings.opencode_cancel_timeout_seconds),
            redact=redact.for_settings(self.settings.runs_dir, self.settings.data_dir).text,
            metrics=self.metrics,
            tool_settings=self.settings,
        )
        queue = RunQueue(
            self.runs,
            node_id=self.settings.node_id,
            lease_seconds=self.settings.lease_seconds,
            tenant_cap=self.settings.max_live_runs_per_tenant,
        )
        self.supervisor = Supervisor.start(
            deps,
            queue,
            max_live_runs=self.settings.max_live_runs,
            max_restarts=self.settings.max_actor_restarts,
        )
        if dsn is not None:
            self._node = NodeHeartbeat(
                dsn, self.settings.node_id, timeout=max(1.0, self.settings.node_dead_seconds)
            )
            await self._node.beat()  # alive before anything: nobody reaps what we claim
        for lease in await self.runs.list_running_leases():
            if is_orphaned(
                lease["lease_owner"], lease["lease_expires_at"], node_id=self.settings.node_id,
                now=lease["now"], owner_heartbeat_at=lease["owner_heartbeat_at"],
                dead_after=self.settings.node_dead_seconds,
            ):  # fmt: skip
                self.supervisor.tell(Command(lease["id"], Reconcile(self.settings.restart_policy)))
        self.supervisor.tell(ClaimWork())  # queued work (anyone's) starts at once
        self._heartbeat = asyncio.create_task(self._beat(), name="node-heartbeat")
        self._poll = asyncio.create_task(self._poll_queue(), name="run-queue-poll")
        self._approval_sweep = asyncio.create_task(
            self._sweep_approvals(), name="approval-timeout-sweep"
        )

    async def _join_cluster(self, listener: Listener, db: Database) -> None:
        """Subscribe the event feed and the command relay to the node's listener."""
        self.feed = EventFeed(self.broker, self.events, self.settings.node_id)
        self.relay = CommandRelay(
            node_id=self.settings.node_id,
            send=lambda channel, payload: notify(db, channel, payload),
            cancel_here=lambda run_id, discard: self.cancel(run_id, discard=discard, relay=False),
            timeout=self.settings.command_relay_timeout_seconds,
        )
        await self.feed.start()
        self._unsubscribe = [
            listener.subscribe(channels.EVENTS, self.feed.on_events),
            listener.subscribe(channels.COMMANDS, self.relay.on_command),
            # new queued work (and the listener's slow poll ticks): claim if a slot is free
            listener.subscribe(channels.WORK, self._work_announced),
        ]

    def feed_unhealthy_reason(self) -> str | None:
        """Readiness: the event feed runs (None without a listener: nothing to feed)."""
        if self.listener is None:
            return None
        return "not started" if self.feed is None else self.feed.task.unhealthy_reason()

    @property
    def draining(self) -> bool:
        """True once :meth:`drain` began: this process takes no new work (readiness red)."""
        return self._draining

    async def drain(self) -> None:
        """Graceful shutdown of the runs (docs/design.md section 9, issue 10): call on SIGTERM,
        before the lifespan stops.

        1. :attr:`draining` turns True; the Supervisor starts no more runs (queued ones
           stay queued in Postgres) and the lease reaper takes no other node's runs.
        2. Live runs get ``shutdown_grace_seconds`` to end on their own.
        3. The rest are handed back by ``drain_policy`` (``requeue``: queued again with the
           lease released and a ``RUN_REQUEUED`` note; ``fail``), each once its engine
           stopped; this waits up to the cancel grace plus 10 s for it.
        4. Every open event stream ends without a terminal event (the client reconnects
           with ``Last-Event-ID``, to this run on another process or the next start).

        Idempotent; a no-op before :meth:`start`.
        """
        if self._draining or self.supervisor is None:
            return
        self._draining = True
        reply: Reply[None] = Reply(asyncio.get_running_loop())
        self.supervisor.tell(Drain(reply))
        try:
            await reply.wait(self.settings.shutdown_grace_seconds)
        except ReplyTimeout:
            log.info("drain: handing back the runs still executing (%s)",
                     self.settings.drain_policy)  # fmt: skip
            self.supervisor.tell(HandBackAll(self.settings.drain_policy))
            bound = max(5.0, self.settings.opencode_cancel_timeout_seconds) + 10.0
            try:
                await reply.wait(bound)
            except ReplyTimeout:
                log.error("drain: runs still executing after %.0f s; the next start "
                          "reconciles them", bound)  # fmt: skip
        self.broker.close_all()

    async def stop(self) -> None:
        """Stop the Supervisor (and every RunActor), then the writer after a final flush;
        mark this node dead, so the others settle whatever it still owns at once."""
        await cancel_and_wait(self._poll)
        await cancel_and_wait(self._approval_sweep)
        await cancel_and_wait(self._heartbeat)
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        if self.relay is not None:
            await self.relay.stop()
        if self.feed is not None:
            await self.feed.stop()
        if self.supervisor is not None:
            ref, self.supervisor = self.supervisor, None
            # ActorRef.stop blocks its caller: do it off the loop.
            await asyncio.to_thread(_stop_all, ref)
        for engine in self.engines.values():
            with contextlib.suppress(Exception):
                await engine.stop()
        await self.writer.stop()
        await self.broker.stop()
        node, self._node = self._node, None
        if node is not None:
            with contextlib.suppress(StorageError):
                await node.leave()
            await node.close()

    async def _beat(self) -> None:
        """Every ``node_heartbeat_seconds``: beat this node's row, then settle the running
        runs of dead nodes (heartbeat older than ``node_dead_seconds``, or lease lapsed)
        by the restart policy (docs/design.md 9); their queued runs need nothing: the queue is
        shared. Every third of the lease: extend this node's run leases (the fallback for
        nodes without a heartbeat row) and delete the rows of nodes silent for an hour."""
        settings = self.settings
        lease_every = settings.lease_seconds / 3
        loop = asyncio.get_running_loop()
        next_lease = loop.time()
        while True:
            await asyncio.sleep(settings.node_heartbeat_seconds)
            try:
                if self._node is not None:
                    await self._node.beat()
                if loop.time() >= next_lease:
                    next_lease = loop.time() + lease_every
                    await self.runs.heartbeat(settings.node_id, settings.lease_seconds)
                    if self._node is not None:  # rows of nodes gone for an hour
                        await self._node.forget(NODE_FORGET_SECONDS)
                if self._draining:  # shutting down: take no other node's runs
                    continue
                for run_id in await self.runs.list_orphaned(
                    settings.node_id, settings.node_dead_seconds
                ):
                    assert self.supervisor is not None
                    self.supervisor.tell(Command(run_id, Reconcile(settings.restart_policy)))
            except Exception:
                log.exception("node heartbeat failed")

    async def _poll_queue(self) -> None:
        """The run queue's safety net: every ``claim_poll_seconds`` ask the Supervisor to
        claim (it does only with free slots), so work queued on another node, or left
        queued by a lost wake-up, starts here."""
        while True:
            await asyncio.sleep(self.settings.claim_poll_seconds)
            if self.supervisor is not None:
                with contextlib.suppress(pykka.ActorDeadError):
                    self.supervisor.tell(ClaimWork())

    def _work_announced(self, payload: str | None) -> None:
        """``rw_work`` (a run was queued on some node) or a listener poll tick. A run
        this node inserted was submitted to its Supervisor by :meth:`create` already."""
        if payload is not None and channels.work_origin(payload) == self.settings.node_id:
            return
        if self.supervisor is not None:
            with contextlib.suppress(pykka.ActorDeadError):
                self.supervisor.tell(ClaimWork())

    def _fenced(self, run_id: uuid.UUID, token: int) -> None:
        """The writer refused a run's events: tell its actor (another node holds it)."""
        if self.supervisor is not None:
            with contextlib.suppress(pykka.ActorDeadError):
                self.supervisor.tell(Fenced(run_id, token))

    async def _sweep_approvals(self) -> None:
        """Every ``approval_sweep_seconds``: runs paused on an approval request past their
        timeout (on any node; the database's clock) are told to fail closed. Each run's
        actor fails it with a conditional UPDATE that still requires the pause expired, so
        a resume that won the race, or another node's sweep, leaves nothing to do. Durable:
        the deadline is a column, so a restart or another node enforces it."""
        while True:
            await asyncio.sleep(self.settings.approval_sweep_seconds)
            if self._draining:
                continue
            try:
                expired = await self.runs.list_approval_expired()
            except Exception:
                log.exception("approval timeout sweep failed")
                continue
            for run_id in expired:
                assert self.supervisor is not None
                self.supervisor.tell(Command(run_id, ExpireApproval()))

    @property
    def db(self) -> Database:
        assert self._db is not None, "run service not started"
        return self._db

    # ---- commands ------------------------------------------------------------------------

    async def create(self, req: CreateRun) -> dict[str, Any]:
        """Create a run and start it in the background (contract 1.2, docs/design.md 8.1).

        Returns:
            The stored run row (status ``queued``).

        A run with ``session_id`` is inserted under a lock on its session row, after its
        ``multitask_strategy`` decided on the session's active runs; ``interrupt`` and
        ``rollback`` then cancel those (verified) before this returns
        (:mod:`runtime.sessions.strategy`).

        Raises:
            AppNotFound, RevisionConflict, InputRequired, ModelUnavailable, EngineRefused:
                in contract 1.2's order of checks (``runtime.runs.errors``).
            SessionNotFound: right after the app check, when ``session_id`` is not a
                session of this app and tenant.
            SessionBusy: strategy ``reject`` while a run of the session is active
                (decided in the insert's transaction: of concurrent creates, one wins).
            TenantQueueFull: right after the app check, when the tenant already has
                ``max_queued_runs_per_tenant`` queued runs (counted in the same read, so
                concurrent creates can pass the cap by at most their own number).
            storage.idempotency.IdempotencyKeyTaken: ``req.idempotency``'s key is bound to
                another live run (nothing was created; found by the first read, before
                every check, its ``stored`` entry is set).
        """
        # The draft, the model and the Idempotency-Key's entry in one round trip; the checks
        # keep contract 1.2's order.
        draft, model, queued, stored = await self.runs.creation_inputs(
            req.app_id, req.tenant_id, req.model_id, req.idempotency
        )
        if stored is not None:  # a repeat: its first response, whatever changed since
            assert req.idempotency is not None
            raise IdempotencyKeyTaken(req.idempotency.key, stored)
        if draft is None:
            raise AppNotFound("Published app not found")
        session = None
        if req.session_id is not None:
            session = await SessionStore(self.db).get(req.session_id, req.app_id, req.tenant_id)
            if session is None:
                raise SessionNotFound("Coding-agent session not found")
        if queued >= self.settings.max_queued_runs_per_tenant:
            raise TenantQueueFull(self.settings.max_queued_runs_per_tenant)
        if req.base_revision_id is not None and req.base_revision_id != draft.id:
            raise RevisionConflict(draft.id, draft.created_at)
        prompt = req.input.strip()
        if not prompt:
            raise InputRequired("input is required")
        messages = prepare_messages(req.messages, prompt, self.settings.message_budget_chars)
        if model is None and req.engine != "scripted":
            raise ModelUnavailable(requested=req.model_id is not None)
        engine = self.engines.get(req.engine)
        if engine is None:
            raise EngineRefused(
                EngineUnavailable.code, f"Engine {req.engine} is not available on this server."
            )
        context: dict[str, Any] = {
            "surface": SURFACE,
            "app_id": str(req.app_id),
            "base_revision_id": str(draft.id),
            "entry_file": draft.entry_file,
            "resolved_model_id": str(model.id) if model else None,
            "execution_engine": req.engine,
            # Fixed at creation (issue 12): the run's policy, else its app's default.
            "approval_policy": req.approval_policy or draft.approval_policy,
            "approval_timeout_seconds": (
                req.approval_timeout_seconds or self.settings.approval_timeout_seconds
            ),
        }
        if req.tools is not None:  # fixed at creation, like the approval policy
            context["tools"] = list(req.tools)
        run_id = uuid.uuid4()
        workspace = None
        if engine.uses_workspace and engine.preflight_uses_workspace:
            try:
                workspace = await asyncio.to_thread(self.workspace_for, run_id)
            except OSError as exc:  # the engine's preflight decides (contract 6: 400, not 500)
                log.warning("workspace of app %s unavailable: %s", req.app_id, exc)
        try:
            context |= await engine.preflight(
                PreflightRequest(
                    tenant_id=req.tenant_id,
                    app_id=req.app_id,
                    user_id=req.user_id,
                    workspace=workspace,
                    # The binding lookup only for engines whose preflight reads it.
                    model=(
                        await self.model_targets.target(model.id if model else None)
                        if engine.preflight_uses_model and self.model_targets is not None
                        else None
                    ),
                )
            )
        except EngineError as exc:
            raise EngineRefused(exc.code, str(exc)) from exc
        input_params: dict[str, Any] = {"input": prompt, "messages": messages, "context": context}
        if req.script is not None:
            input_params["script"] = req.script
        if req.webhook is not None:  # its end queues a delivery (migration 0011)
            input_params["webhook"] = req.webhook
        now = datetime.now(UTC)
        accepted = make_event(
            EventDraft("run.accepted", {"status": "queued", "surface": SURFACE}),
            run_id=run_id,
            app_id=req.app_id,
            seq=1,
            ts=now,
        )

        async def insert(
            store: RunStore, place: tuple[uuid.UUID, int] | None = None
        ) -> dict[str, Any]:
            return await store.insert(
                run_id=run_id,
                tenant_id=req.tenant_id,
                app_id=req.app_id,
                user_id=req.user_id,
                base_revision_id=draft.id,
                requested_model_id=req.model_id if model is not None else None,
                resolved_model_id=model.id if model else None,
                engine=req.engine,
                input_params=input_params,
                created_at=now,
                accepted=accepted.row,
                idempotency=req.idempotency,
                respond=run_object,
                session=place,
            )

        follow = FollowUp()
        if session is None:
            row = await insert(self.runs)
        else:
            strategy = req.multitask_strategy or session["multitask_strategy"]
            row, follow = await self._insert_in_session(req, strategy, insert)
        self.broker.publish([accepted])
        self.metrics.run_created(req.engine)
        assert self.supervisor is not None
        self.supervisor.tell(Submit(run_id, req.tenant_id))
        for earlier in follow.cancel:  # interrupt / rollback: newest first
            try:
                await self.cancel(earlier, discard=follow.discard)
            except RunError as exc:  # the new run still waits for it to end
                log.warning("interrupting run %s failed: %s", earlier, exc)
        return row

    async def _insert_in_session(
        self, req: CreateRun, strategy: str, insert: Callable[..., Awaitable[dict[str, Any]]]
    ) -> tuple[dict[str, Any], FollowUp]:
        """Insert a session run under the lock on its session row: the strategy decides
        on the session's active runs and the run takes the session's next place, all in
        one transaction (so of two concurrent ``reject`` creates exactly one inserts)."""
        assert req.session_id is not None
        async with self.db.transaction() as tx:
            sessions = SessionStore(tx)
            if await sessions.lock(req.session_id, req.app_id, req.tenant_id) is None:
                raise SessionNotFound("Coding-agent session not found")
            follow = follow_up(req.session_id, strategy, await sessions.active_runs(req.session_id))
            seq = await sessions.take_seq(req.session_id)
            row = await insert(RunStore(tx, self.runs.origin), (req.session_id, seq))
        return row, follow

    async def cancel(
        self, run_id: uuid.UUID, *, discard: bool = False, relay: bool = True
    ) -> dict[str, Any]:
        """Cancel a run and return its row afterwards (contract 1.7, docs/design.md 8.3).
        A session run keeps its work (turns, file changes as a revision) unless
        ``discard`` (the ``rollback`` strategy).

        A run executing on another node (``running`` under another lease owner) is
        relayed to that node (:mod:`runtime.runs.relay`), which answers once its engine
        stopped; then this node asks its actor again (the row, now final). If the run
        moved to yet another node meanwhile, the cancel follows it (at most
        :data:`RELAY_HOPS` relays). A run found ``running`` under this node although the
        actor that read it had no engine (a claim round here took it after that read: a
        resume raced the cancel) is asked again, so the executing actor cancels it.

        Args:
            relay: False on the owner's side of a relayed cancel (never relay again).

        Raises:
            RunUnresponsive, RunActorFailed: the run's actor did not answer in time, or
                crashed handling the command (the caller may retry).
            RunOwnerUnresponsive: the owner node did not answer within
                ``command_relay_timeout_seconds`` (the cancel is not confirmed).
        """
        row = await self._cancel_here(run_id, discard)
        for _ in range(RELAY_HOPS):
            owner = row.get("lease_owner")
            if row.get("status") != states.RUNNING or owner is None:
                return row
            if owner == self.settings.node_id:
                # Running here although the actor that read it had no engine: this node's
                # claim round took the run (queued by a resume racing this cancel) after
                # that read. Ask again: the command now reaches the executing actor.
                row = await self._cancel_here(run_id, discard)
                continue
            if not relay or self.relay is None:
                return row
            await self.relay.cancel(
                run_id, owner, functools.partial(self._left, run_id, owner), discard=discard
            )
            # Ask here again: a settled run comes back unchanged, one queued again meanwhile
            # (taken over) is cancelled here, one running on yet another node is relayed.
            row = await self._cancel_here(run_id, discard)
        if row.get("status") == states.RUNNING:
            raise RunOwnerUnresponsive(str(row.get("lease_owner")),
                                       self.settings.command_relay_timeout_seconds)  # fmt: skip
        return row

    async def _cancel_here(self, run_id: uuid.UUID, discard: bool) -> dict[str, Any]:
        """Cancel through this node's actor of the run (no relay); returns the row."""
        reply: Reply[dict[str, Any]] = Reply(asyncio.get_running_loop())
        return await self._command(run_id, Cancel(reply, discard), reply)

    async def _left(self, run_id: uuid.UUID, owner: str) -> bool:
        """The run no longer runs under ``owner`` (a relayed cancel's answer was lost)."""
        row = await self.runs.get(run_id)
        return row is None or row["status"] != states.RUNNING or row.get("lease_owner") != owner

    async def resume(
        self,
        run_id: uuid.UUID,
        payload: dict[str, Any],
        approval: dict[str, Any] | None = None,
        key: ResumeKey | None = None,
    ) -> dict[str, Any]:
        """Resume a paused run with ``payload`` (contract 1.6, docs/design.md 8.4) and, when
        it is paused on an approval request, the decision ``approval``
        (``{request_id, decision, arguments?, message?}``, issue 12). ``key``: the
        request's ``Idempotency-Key``; a resume the run already applied under it is answered
        with the run as it is now (:mod:`runtime.runs.resume_keys`).

        Raises:
            RunNotPaused: the run is not paused.
            ApprovalNotPending, ApprovalInvalid: see :func:`runtime.approvals.check_resume`.
            ResumeKeyReused: ``key`` was applied to this run with another body.
            RunUnresponsive, RunActorFailed: as for :meth:`cancel`.
        """
        if approval is not None:
            await self._check_edited_checkpoint(run_id, approval)
        reply: Reply[dict[str, Any]] = Reply(asyncio.get_running_loop())
        return await self._command(run_id, Resume(payload, reply, approval, key), reply)

    async def _check_edited_checkpoint(self, run_id: uuid.UUID, approval: dict[str, Any]) -> None:
        """An approval that edits a paused restore_checkpoint's id must name a revision of
        the run's app, as the tool requires of the model's id
        (:func:`runtime.approvals.edited_checkpoint_id`). Read here, before the command:
        the lifecycle does no I/O, and revisions never move between apps.

        Raises:
            ApprovalInvalid: ``BUILDER_PATCH_POLICY_VIOLATION`` on
                ``approval.arguments.checkpoint_revision_id`` (the tool's code and text).
        """
        row = await self.runs.get(run_id)
        if row is None:
            return  # the command answers 404
        revision_id = approvals.edited_checkpoint_id(row.get("checkpoint"), approval, self.settings)
        if revision_id is None:
            return
        app_id = row["published_app_id"]
        if await apps_store.get_revision(self.db, revision_id=revision_id, app_id=app_id) is None:
            raise ApprovalInvalid(
                POLICY_CODE, "Checkpoint does not belong to this app",
                "approval.arguments.checkpoint_revision_id",
            )  # fmt: skip

    async def _command(
        self, run_id: uuid.UUID, command: Any, reply: Reply[dict[str, Any]]
    ) -> dict[str, Any]:
        assert self.supervisor is not None
        self.supervisor.tell(Command(run_id, command))
        try:
            return await reply.wait(COMMAND_TIMEOUT_SECONDS)
        except ReplyTimeout as exc:
            raise RunUnresponsive("The run did not answer in time; try again") from exc
        except RunActorFailed as exc:
            log.warning("command %r on run %s failed: %s", command, run_id, exc)
            raise
        except RunError:
            raise

    def serialize(self, row: dict[str, Any]) -> dict[str, Any]:
        return run_object(row)


def _stop_all(ref: pykka.ActorRef) -> None:
    """Stop the Supervisor, which stops its RunActors first."""
    with contextlib.suppress(pykka.ActorDeadError, pykka.Timeout):
        ref.stop(block=True, timeout=30)
