"""Repository for coding-agent runs (``agent_runs``), contract section 2.

Rows come back as plain dicts. Status-changing methods are conditional updates that take
the statuses the transition table allows as the source (``expected``); they return None when
the run was not in one of them, so a terminal status is never overwritten.

Fencing (docs/design.md 9, migration 0007): a run's ``claim_token`` moves on with every claim,
take-over and status write. Every later write of the run by its executor names the token it
holds (``token``) and is refused (None, or False) once the token moved on: another node took
the run, and a stalled old owner cannot write over it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from storage.database import Database
from storage.events import EventRow, EventStore
from storage.idempotency import IdempotencyKey, IdempotencyKeyTaken, StoredKey
from storage.models import Model
from storage.records import from_record

log = logging.getLogger(__name__)

SURFACE = "published_app_coding_agent"


#: Builds the events written in the same transaction as a status change, from the row as
#: the change left it (seqs continue after its ``last_event_seq``).
EventsFor = Callable[[dict[str, Any]], Sequence[EventRow]]


@dataclass(frozen=True, slots=True)
class StatusEvents:
    """The events a status write appends in its transaction (:meth:`RunStore.finish`)."""

    count: int
    """How many events ``build`` returns: the status statement counts them in the run's
    ``last_event_seq`` itself, so the row is updated once (not again for its events)."""
    build: EventsFor
    """Builds them from the row as the status change left it, before its events (seqs
    continue after that row's ``last_event_seq``)."""


def _queued_row(args: tuple[Any, ...], place: tuple[Any, Any]) -> dict[str, Any]:
    """The row ``runs_insert`` / ``runs_insert_keyed`` insert for their parameters ``args``
    ($1-$16) and ``place`` (the session and place in it): the columns they set, and a new
    run's values (the table's defaults) of every other column the run object reads."""
    (run_id, tenant_id, app_id, user_id, surface, base_revision_id, requested_model_id,
     resolved_model_id, engine, input_params, created_at) = args[:11]  # fmt: skip
    return {
        "id": run_id, "tenant_id": tenant_id, "published_app_id": app_id, "user_id": user_id,
        "initiator_user_id": user_id, "surface": surface, "base_revision_id": base_revision_id,
        "requested_model_id": requested_model_id, "resolved_model_id": resolved_model_id,
        "execution_engine": engine, "status": "queued", "input_params": input_params,
        "last_event_seq": 1, "created_at": created_at, "session_id": place[0],
        "session_seq": place[1], "result_revision_id": None, "checkpoint_revision_id": None,
        "error_message": None, "started_at": None, "completed_at": None, "checkpoint": None,
        "approval_expires_at": None, "usage_prompt_tokens": None,
        "usage_completion_tokens": None, "usage_total_tokens": None, "usage_model_calls": 0,
        "usage_model_calls_unreported": 0, "usage_model_ms": 0, "usage_tool_calls": 0,
        "usage_tool_ms": 0,
    }  # fmt: skip


def _row(record: Any) -> dict[str, Any] | None:
    return dict(record) if record is not None else None


def _one(status: str) -> bool:
    """Whether an ``UPDATE`` command status (``"UPDATE n"``) changed a row."""
    return status.rsplit(" ", 1)[-1] != "0"


class RunTakenOver(Exception):
    """A write of the run was refused under the writer's claim token: another node took
    the run (docs/design.md 9, fencing). Not a :class:`storage.errors.StorageError`: a
    retry can never succeed."""

    def __init__(self, run_id: uuid.UUID) -> None:
        super().__init__(f"run {run_id}: another node took this run over")
        self.run_id = run_id


@dataclass(frozen=True, slots=True)
class DraftHead:
    """What run creation needs of the app's current draft revision (not its files)."""

    id: uuid.UUID
    entry_file: str
    created_at: datetime
    approval_policy: str = "none"
    """The app's default approval policy (runtime/approvals.py)."""


class RunStore:
    """Queries on ``agent_runs``; every HTTP-facing lookup is scoped by tenant and app.

    Args:
        db: the database (or a transaction's).
        origin: the node id the events of status writes are announced with
            (:class:`storage.events.EventStore`'s ``origin``), and a new run on ``rw_work``
            (``<run_id>:<origin>``: that node submits its own runs to itself directly).
    """

    def __init__(self, db: Database, origin: str = "") -> None:
        self.db = db
        self.origin = origin

    async def insert(
        self,
        *,
        run_id: uuid.UUID,
        tenant_id: uuid.UUID,
        app_id: uuid.UUID,
        user_id: uuid.UUID | None,
        base_revision_id: uuid.UUID | None,
        requested_model_id: uuid.UUID | None,
        resolved_model_id: uuid.UUID | None,
        engine: str,
        input_params: dict[str, Any],
        created_at: datetime,
        accepted: EventRow,
        idempotency: IdempotencyKey | None = None,
        respond: Callable[[dict[str, Any]], Any] | None = None,
        session: tuple[uuid.UUID, int] | None = None,
    ) -> dict[str, Any]:
        """Insert a ``queued`` run together with its event seq 1 (``accepted``, whose
        ``run_id`` must be ``run_id``): one atomic statement. ``session`` is the run's
        session and its place in it (:meth:`storage.sessions.SessionStore.take_seq`).

        With ``idempotency`` the key is bound to the run in that same statement and
        ``respond(row)`` (the create response) is stored with it in the same transaction;
        when the key is already bound to a live run nothing is inserted.

        Raises:
            storage.errors.ForeignKeyViolation: the tenant, app, user or a model is gone.
            storage.idempotency.IdempotencyKeyTaken: ``idempotency``'s key is bound to
                another live run (read it with :func:`storage.idempotency.lookup`).
        """
        assert accepted.run_id == run_id and accepted.seq == 1
        args = (
            run_id, tenant_id, app_id, user_id, SURFACE, base_revision_id,
            requested_model_id, resolved_model_id, engine, input_params, created_at,
            accepted.type, accepted.stage, accepted.payload, accepted.diagnostics, accepted.ts,
        )  # fmt: skip
        place = session or (None, None)
        if idempotency is None:
            row = await self.db.fetchrow("runs_insert", *args, *place, self.origin)
            assert row is not None
            return dict(row)
        assert respond is not None
        key = idempotency
        # The response goes in with the key, in the same statement: it is made from the row
        # the statement inserts, known before (every column a parameter or a new run's value).
        response = respond(_queued_row(args, place))
        record = await self.db.fetchrow(
            "runs_insert_keyed", *args, key.principal, key.key, key.fingerprint,
            float(key.ttl_seconds), *place, self.origin, response,
        )  # fmt: skip
        if record is None:
            raise IdempotencyKeyTaken(key.key, None)
        row = dict(record)
        actual = respond(row)
        if actual != response:  # _queued_row is behind the table: store the true response
            log.error("run %s: the stored create response differed from the inserted row's; "
                      "_queued_row misses a column", run_id)  # fmt: skip
            await self.db.execute("idempotency_set_response", *key.scope, actual)
        return row

    async def creation_inputs(
        self,
        app_id: uuid.UUID,
        tenant_id: uuid.UUID,
        model_id: uuid.UUID | None,
        key: IdempotencyKey | None = None,
    ) -> tuple[DraftHead | None, Model | None, int, StoredKey | None]:
        """The app's current draft (None: no such app in the tenant, or no draft), the
        chat model a new run resolves to (:func:`storage.models.resolve_chat_model`'s rules;
        None when nothing qualifies), the tenant's count of queued runs and ``key``'s live
        entry (as :func:`storage.idempotency.lookup`; None without a key or when it is
        free), read in one round trip."""
        scope = (None, None) if key is None else (key.principal, key.key)
        row = await self.db.fetchrow("runs_create_inputs", app_id, tenant_id, model_id, *scope)
        assert row is not None
        stored = (
            None
            if row["idem_run_id"] is None
            else StoredKey(row["idem_fingerprint"], row["idem_run_id"], row["idem_response"])
        )
        draft = (
            None
            if row["draft_id"] is None
            else DraftHead(
                row["draft_id"],
                row["draft_entry_file"],
                row["draft_created_at"],
                row["draft_approval_policy"],
            )  # fmt: skip
        )
        model = None if row["id"] is None else from_record(Model, row)
        return draft, model, row["tenant_queued"], stored

    async def get(self, run_id: uuid.UUID) -> dict[str, Any] | None:
        """Unscoped read, for the run's own actor only."""
        return _row(await self.db.fetchrow("runs_get", run_id))

    async def turn_text(self, run_id: uuid.UUID) -> str:
        """The assistant text the run's log already holds for its current turn (every
        ``assistant.delta`` since the last ``run.completed``, concatenated): what an attempt
        interrupted by a crash, a restart or a hand-back streamed before it stopped."""
        return str(await self.db.fetchval("events_turn_text", run_id) or "")

    async def get_for_app(
        self, run_id: uuid.UUID, app_id: uuid.UUID, tenant_id: uuid.UUID
    ) -> dict[str, Any] | None:
        """The run if it belongs to this app *and* tenant (docs/design.md 8.8), else None."""
        return _row(await self.db.fetchrow("runs_get_for_app", run_id, app_id, tenant_id, SURFACE))

    async def list_checkpoints(
        self, app_id: uuid.UUID, tenant_id: uuid.UUID, limit: int
    ) -> list[dict[str, Any]]:
        """Runs with a checkpoint revision, newest first (contract 1.8)."""
        rows = await self.db.fetch("runs_list_checkpoints", app_id, tenant_id, SURFACE, limit)
        return [dict(r) for r in rows]

    async def claim(
        self, run_id: uuid.UUID, owner: str, lease_seconds: float, *, expected: Sequence[str]
    ) -> dict[str, Any] | None:
        """Move the run to ``running`` with a lease if it is in one of ``expected`` (the
        table's sources: ``queued``); None otherwise (so one executor per run, ever:
        docs/design.md 8.1)."""
        return _row(
            await self.db.fetchrow("runs_claim", run_id, owner, lease_seconds, list(expected))
        )

    async def claim_next(
        self,
        owner: str,
        lease_seconds: float,
        *,
        limit: int,
        tenant_cap: int,
        expected: Sequence[str],
        target: str,
        executing: Sequence[str],
        skip: Sequence[uuid.UUID] = (),
    ) -> tuple[list[dict[str, Any]], int]:
        """Claim up to ``limit`` queued runs for ``owner``: the run queue (docs/design.md 9).

        Oldest eligible first, tenants taking turns (a tenant's k-th run waits behind every
        tenant with fewer than k runs executing or ahead of it), at most ``tenant_cap`` of one
        tenant executing across all nodes, a session's runs in order, none of ``skip``.
        Claims of all nodes are serialised by a transaction-scoped advisory lock so the
        caps are counted exactly. Each claimed
        run moves ``expected`` (queued) -> ``target`` (running) with a lease and a new
        ``claim_token``.

        Returns:
            The claimed rows (possibly empty), and how many eligible runs the round passed
            over (its tenant at the cap, or held by another statement): they may start when
            a slot or a tenant's turn frees.

        Raises:
            storage.errors.StorageError: nothing was claimed, or the answer was lost (a
                commit may have happened: see :meth:`list_owned`).
        """
        if limit <= 0:
            return [], 0
        async with self.db.transaction("queue_claim_lock") as tx:
            records = await tx.fetch(
                "runs_claim_next", owner, lease_seconds, limit, tenant_cap, list(expected),
                list(executing), list(skip), target,
            )  # fmt: skip
        rows = [dict(r) for r in records if r["id"] is not None]
        for row in rows:
            del row["passed_over"]
        return rows, int(records[0]["passed_over"])

    async def list_owned(self, owner: str, *, statuses: Sequence[str]) -> list[dict[str, Any]]:
        """Runs in ``statuses`` whose lease ``owner`` holds, oldest first."""
        return [dict(r) for r in await self.db.fetch("runs_list_owned", owner, list(statuses))]

    async def reclaim(
        self,
        run_id: uuid.UUID,
        owner: str,
        lease_seconds: float,
        *,
        expected: Sequence[str],
        token: int,
    ) -> dict[str, Any] | None:
        """Take over a run still in one of ``expected`` (``running``) with claim token
        ``token`` (an actor restart, or finishing a dead node's recorded work); bumps
        ``restart_count`` and the token; None when it moved on."""
        return _row(
            await self.db.fetchrow(
                "runs_reclaim", run_id, owner, lease_seconds, list(expected), token
            )
        )

    async def finish(
        self,
        run_id: uuid.UUID,
        status: str,
        *,
        expected: Sequence[str],
        token: int,
        error: str | None = None,
        output: dict[str, Any] | None = None,
        events: StatusEvents | None = None,
        session_turns: list[dict[str, Any]] | None = None,
        outcome: dict[str, Any] | None = None,
    ) -> dict[str, Any] | None:
        """Write a terminal status (completed, failed, cancelled) if the run is in one of
        ``expected`` and still holds claim token ``token``; sets ``completed_at`` and
        releases the lease. ``events`` (see :meth:`_write`) and ``session_turns`` (what
        the run adds to its session's conversation, migration 0012; ``[]`` clears them)
        are written in the same transaction. ``outcome``: the engine's result, recorded
        by the same statement (as :meth:`record_outcome` does; None keeps the stored one)."""
        args = (run_id, status, error, output, list(expected), token, outcome)
        return await self._write_with_turns("runs_finish", args, events, session_turns)

    async def pause(
        self,
        run_id: uuid.UUID,
        *,
        expected: Sequence[str],
        token: int,
        checkpoint: dict[str, Any],
        output: dict[str, Any],
        events: StatusEvents | None = None,
        approval_timeout: float | None = None,
        session_turns: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any] | None:
        """``running -> paused``, keeping the engine checkpoint for the resume; with
        ``approval_timeout`` (seconds) the pause fails closed once that long has passed
        (``approval_expires_at``, swept by :meth:`list_approval_expired`).
        ``session_turns`` as for :meth:`finish` (a paused session run's turns so far)."""
        args = (run_id, checkpoint, output, list(expected), approval_timeout, token)
        return await self._write_with_turns("runs_pause", args, events, session_turns)

    async def _write_with_turns(
        self,
        name: str,
        args: tuple[Any, ...],
        events: StatusEvents | None,
        session_turns: list[dict[str, Any]] | None,
    ) -> dict[str, Any] | None:
        """:meth:`_write`, and with ``session_turns`` (None: leave them; ``[]``: clear
        them) the run's session turns in the same transaction once the write landed."""
        if session_turns is None:
            return await self._write(name, args, events)
        async with self.db.transaction() as tx:
            row = await RunStore(tx, self.origin)._write(name, args, events)
            if row is not None:
                await tx.execute(
                    "runs_set_session_turns", args[0], session_turns or None, row["claim_token"]
                )
                row["session_turns"] = session_turns or None
            return row

    async def expire_approval(
        self,
        run_id: uuid.UUID,
        status: str,
        *,
        expected: Sequence[str],
        token: int,
        error: str | None,
        events: StatusEvents | None = None,
    ) -> dict[str, Any] | None:
        """Fail a run paused on an approval request whose timeout passed (by the
        database's clock) and still holding claim token ``token``; None when it is not
        (resumed, cancelled, not yet expired, or the token moved on)."""
        return await self._write(
            "runs_expire_approval", (run_id, status, error, list(expected), token), events
        )

    async def list_approval_expired(self, limit: int = 100) -> list[uuid.UUID]:
        """Runs paused on an approval request past their timeout, oldest expiry first."""
        return [r["id"] for r in await self.db.fetch("runs_list_approval_expired", limit)]

    async def requeue(
        self,
        run_id: uuid.UUID,
        *,
        expected: Sequence[str],
        token: int,
        resume_payload: Any = None,
        events: StatusEvents | None = None,
    ) -> dict[str, Any] | None:
        """Back to ``queued`` (resume, the requeue restart policy, a drain), storing the
        payload; releases the lease."""
        return await self._write(
            "runs_requeue", (run_id, resume_payload, list(expected), token), events
        )

    async def _write(
        self, name: str, args: tuple[Any, ...], events: StatusEvents | None
    ) -> dict[str, Any] | None:
        """Run a conditional status write (``args``: its parameters but the last, the
        events' count); with ``events``, in one transaction with the events
        ``events.build`` makes from the written row (a run's terminal sequence is stored
        whole or not at all, so a retried or repeated finish never doubles it). The status
        statement advances ``last_event_seq`` by ``events.count`` itself, and the events
        are only inserted: one update of the run's row per write.

        Returns:
            The written row (its ``last_event_seq`` includes the new events), or None when
            the run was not in an expected status (nothing written).

        Raises:
            storage.errors.StorageError: nothing of it was written.
            ValueError: ``events.build`` did not return ``events.count`` events numbered
                on from the row's ``last_event_seq`` (nothing written).
        """
        if events is None or events.count == 0:
            return _row(await self.db.fetchrow(name, *args, 0))
        async with self.db.transaction("runs_write_guard") as tx:
            record = await tx.fetchrow(name, *args, events.count)
            if record is None:
                return None
            row = dict(record)
            # The statement counted the events already: build them from the row as the
            # change left it before them (their seqs continue after its last_event_seq).
            first = row["last_event_seq"] - events.count + 1
            rows = list(events.build({**row, "last_event_seq": first - 1}))
            if [r.seq for r in rows] != list(range(first, first + events.count)):
                # the count and the built events disagree: roll back, store nothing
                raise ValueError(
                    f"{name}: {events.count} events counted, seqs {[r.seq for r in rows]} built"
                )
            await EventStore(tx, self.origin).append_counted(rows)
            return row

    async def record_outcome(
        self, run_id: uuid.UUID, outcome: dict[str, Any], *, token: int
    ) -> bool:
        """Record the engine's result before the run is finalised (``engine_outcome``).
        False: refused, the run's claim token is no longer ``token``."""
        return _one(await self.db.execute("runs_record_outcome", run_id, outcome, token))

    async def record_usage(
        self,
        run_id: uuid.UUID,
        call_id: uuid.UUID,
        *,
        kind: str,
        name: str,
        tokens: tuple[int | None, int | None, int | None],
        duration_ms: int | None,
        token: int,
    ) -> dict[str, Any] | None:
        """Record one call's usage (``kind`` ``model`` or ``tool``; ``tokens`` prompt,
        completion, total, None where not reported) and add it to the run's ``usage_*``
        sums, in one statement, under the owner's claim token ``token``; a ``call_id``
        recorded before adds nothing.

        Returns:
            The run row with its sums, or None when refused: the run is gone or another
            node took it (nothing written).
        """
        return _row(
            await self.db.fetchrow(
                "runs_record_usage", run_id, call_id, kind, name, *tokens, duration_ms, token
            )
        )

    async def set_engine_ref(self, run_id: uuid.UUID, ref: str, *, token: int) -> bool:
        """Store the engine's upstream handle (e.g. an OpenCode session id). False:
        refused (fenced, as for :meth:`record_outcome`)."""
        return _one(await self.db.execute("runs_set_engine_ref", run_id, ref, token))

    async def record_checkpoint(
        self, run_id: uuid.UUID, checkpoint: uuid.UUID, result: uuid.UUID | None, *, token: int
    ) -> bool:
        """Record a checkpoint the run's agent made (contract 7.3): ``checkpoint`` becomes
        the checkpoint revision; ``result`` the result revision (None: keep the run's
        result, or use ``checkpoint`` when it has none). False: refused (fenced)."""
        return _one(
            await self.db.execute("runs_record_checkpoint", run_id, checkpoint, result, token)
        )

    async def set_revisions(
        self, run_id: uuid.UUID, result_revision_id: uuid.UUID, checkpoint_revision_id: uuid.UUID
    ) -> dict[str, Any] | None:
        """Link the run to the revision it produced and its checkpoint (contract 1.9: a
        person's restore of an ended run; the caller checks that it ended)."""
        return _row(
            await self.db.fetchrow(
                "runs_set_revisions", run_id, result_revision_id, checkpoint_revision_id
            )
        )

    async def apply_revisions(
        self,
        run_id: uuid.UUID,
        result_revision_id: uuid.UUID,
        checkpoint_revision_id: uuid.UUID,
        *,
        token: int,
    ) -> None:
        """Auto-apply's link of the run to the revision it made (contract 8), under the
        owner's claim token ``token``; call it in the transaction that creates the revision.

        Raises:
            RunTakenOver: refused (the token moved on): roll the transaction back.
        """
        row = await self.db.fetchrow(
            "runs_apply_revisions", run_id, result_revision_id, checkpoint_revision_id, token
        )
        if row is None:
            raise RunTakenOver(run_id)

    async def hold_claim(self, run_id: uuid.UUID, token: int) -> None:
        """Fence a write the run's owner makes outside ``agent_runs`` (a checkpoint tool's
        draft revision): lock the run's row ``FOR SHARE`` while it still holds claim token
        ``token``, until the calling transaction ends (a take-over waits for it).

        Raises:
            RunTakenOver: the token moved on: roll the transaction back.
        """
        if await self.db.fetchrow("runs_hold_claim", run_id, token) is None:
            raise RunTakenOver(run_id)

    async def next_in_session(self, session_id: uuid.UUID) -> dict[str, Any] | None:
        """The session's first queued run (``id``, ``tenant_id``, ``published_app_id``,
        ``user_id``, ``execution_engine``), or None (migration 0012)."""
        return _row(await self.db.fetchrow("sessions_next_queued", session_id))

    async def heartbeat(self, owner: str, lease_seconds: float) -> None:
        """Extend the lease of every running run this node owns."""
        await self.db.execute("runs_heartbeat", owner, lease_seconds)

    async def list_running_leases(self) -> list[dict[str, Any]]:
        """Every running run's ``id``, ``lease_owner``, ``lease_expires_at``, its owner's
        last node heartbeat ``owner_heartbeat_at`` (None: no node row) and the database's
        ``now`` (all compared on one clock)."""
        return [dict(r) for r in await self.db.fetch("runs_list_running_leases")]

    async def live_among(self, run_ids: list[uuid.UUID]) -> set[uuid.UUID]:
        """The runs of ``run_ids`` that exist and are not terminal (queued, running,
        paused): the ones whose workspaces survive the start-up cleanup."""
        return {r["id"] for r in await self.db.fetch("runs_live_among", run_ids)}

    async def list_orphaned(self, node_id: str, dead_after: float) -> list[uuid.UUID]:
        """Running runs of other nodes whose owner is dead: its node heartbeat is older
        than ``dead_after`` seconds, or its lease lapsed (the periodic reaper's work)."""
        return [r["id"] for r in await self.db.fetch("runs_list_orphaned", node_id, dead_after)]
