"""The execution slots of one node: how many runs execute here now.

A plain object with no I/O or threads, owned by the Supervisor. Which queued run executes
next is no longer decided here: the run queue is the runs table, and every node claims
from it with one query (``runs_claim_next`` in storage/queries/runs.sql, docs/design.md 9) that
takes tenants in turns and holds the per-tenant cap across all nodes. Runs of one app
execute in parallel: each has its own workspace (:mod:`runtime.run_workspaces`). This
object only says how many runs this node may claim
(``max_live`` minus those it holds).
"""

from __future__ import annotations

import collections
import uuid
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Slot:
    """One executing run's hold on capacity, and its tenant."""

    run_id: uuid.UUID
    tenant_id: uuid.UUID | None


class Admission:
    """The execution slots of one node.

    Args:
        max_live: runs executing at once on this node (>= 1).
    """

    def __init__(self, *, max_live: int) -> None:
        self.max_live = max_live
        self._executing: collections.Counter[uuid.UUID | None] = collections.Counter()
        self.live = 0

    def free(self) -> int:
        """Slots free now: how many runs this node may claim."""
        return max(0, self.max_live - self.live)

    def executing(self, tenant_id: uuid.UUID | None) -> int:
        """Runs of ``tenant_id`` holding a slot here now."""
        return self._executing[tenant_id]

    def hold(self, slot: Slot) -> None:
        """Count an executing run (claimed, or a crashed actor's restart)."""
        self.live += 1
        self._executing[slot.tenant_id] += 1

    def release(self, slot: Slot) -> None:
        """A run gave its slot back (finished, crashed or handed off)."""
        self.live -= 1
        self._executing[slot.tenant_id] -= 1
        if self._executing[slot.tenant_id] <= 0:
            del self._executing[slot.tenant_id]
