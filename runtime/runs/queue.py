"""The run queue, the loop side: claim rounds for the Supervisor (docs/design.md section 9).

The queue is the runs table. A node with free slots claims the oldest eligible queued runs
with one statement (``RunStore.claim_next``: ``FOR UPDATE SKIP LOCKED``, tenants taking
turns, the per-tenant cap counted across every node, a session's runs in order, under a
transaction-scoped advisory lock), which moves them to ``running`` under this node's lease
with a new claim token. The Supervisor asks for a round; the answer comes back to it as a
:class:`runtime.runs.messages.Claimed` message (``tell``, never a future the loop waits on).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Collection
from typing import Any

import pykka

from runtime.runs import states
from runtime.runs.messages import Claimed
from storage.errors import StorageError
from storage.runs import RunStore

log = logging.getLogger(__name__)


class RunQueue:
    """Claims queued runs for one node. Every method runs on the asyncio loop.

    Args:
        runs: the run repository.
        node_id: this node; the lease owner of what it claims.
        lease_seconds: the lease a claim starts with.
        tenant_cap: runs of one tenant executing at once across all nodes
            (``RUNWRIGHT_MAX_LIVE_RUNS_PER_TENANT``).
    """

    def __init__(
        self,
        runs: RunStore,
        *,
        node_id: str,
        lease_seconds: float,
        tenant_cap: int,
    ) -> None:
        self.runs = runs
        self.node_id = node_id
        self.lease_seconds = lease_seconds
        self.tenant_cap = tenant_cap
        self._lost = False  # a claim's answer was lost: its commit may have happened

    async def claim(
        self, limit: int, skip: Collection[uuid.UUID] = ()
    ) -> tuple[list[dict[str, Any]], int]:
        """Claim up to ``limit`` queued runs, passing over ``skip``; with how many eligible
        runs were passed over (:meth:`storage.runs.RunStore.claim_next`).

        After a round whose answer was lost (a database error), the next round first
        adopts the runs ``running`` under this node's lease that are not in ``skip``: a
        commit may have happened, and nobody else would ever run them.

        Raises:
            storage.errors.StorageError: the database did not answer.
        """
        adopted: list[dict] = []  # type: ignore[type-arg]
        if self._lost:
            owned = await self.runs.list_owned(self.node_id, statuses=(states.RUNNING,))
            adopted = [row for row in owned if row["id"] not in skip]
            self._lost = False
        try:
            rows, passed_over = await self.runs.claim_next(
                self.node_id, self.lease_seconds, limit=limit - len(adopted),
                tenant_cap=self.tenant_cap, expected=states.sources(states.RUNNING),
                target=states.RUNNING, executing=(states.RUNNING,),
                skip=list(skip),
            )  # fmt: skip
        except StorageError:
            self._lost = True
            raise
        return adopted + rows, passed_over

    async def claim_round(
        self, limit: int, skip: Collection[uuid.UUID], supervisor: pykka.ActorRef
    ) -> None:
        """One round for the Supervisor: :meth:`claim`, then tell it :class:`Claimed`
        (``failed`` on a database error: it claims again at its next poll)."""
        try:
            rows, passed_over = await self.claim(limit, skip)
        except StorageError as exc:
            log.warning("claiming queued runs failed (%s); the next poll retries", exc)
            message = Claimed((), limit, failed=True)
        except Exception:
            log.exception("claiming queued runs failed")
            message = Claimed((), limit, failed=True)
        else:
            message = Claimed(tuple(rows), limit, passed_over=passed_over > 0)
        try:
            supervisor.tell(message)
        except pykka.ActorDeadError:  # stopping: the claimed runs are reconciled later
            log.info("supervisor gone; %d claimed runs left to reconciliation", len(message.rows))
