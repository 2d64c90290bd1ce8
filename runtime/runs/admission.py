"""Which waiting runs start executing next: fair across tenants (docs/security.md).

A plain object with no I/O or threads, owned by the Supervisor. It holds the runs waiting
for an execution slot (one FIFO per tenant), what executes now (per tenant), and decides
admissions:

- at most ``max_live`` runs execute on this node, and at most ``max_live_per_tenant`` of
  one tenant: a tenant at its cap waits without holding back anyone else;
- tenants take turns (round robin over tenants with waiting runs), so one tenant's long
  queue cannot delay another tenant's first run by more than one turn per tenant;
- within a tenant, runs start in submission order, except that a run the caller says to
  skip (its actor is busy with a command) is passed over and keeps its place.

Runs of one app or user are not held back: each run has its own workspace
(:mod:`runtime.run_workspaces`).
"""

from __future__ import annotations

import collections
import uuid
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Slot:
    """One executing run's hold on capacity, counted against its tenant."""

    run_id: uuid.UUID
    tenant_id: uuid.UUID | None


class Admission:
    """The waiting room and the execution slots of one node.

    Args:
        max_live: runs executing at once on this node (>= 1).
        max_live_per_tenant: runs of one tenant executing at once on this node (>= 1).
    """

    def __init__(self, *, max_live: int, max_live_per_tenant: int) -> None:
        self.max_live = max_live
        self.max_live_per_tenant = max_live_per_tenant
        # tenant -> its waiting runs in submission order (a dict used as an ordered set);
        # the outer dict's order is the round-robin turn order (a tenant moves to the back
        # after its turn).
        self._waiting: dict[uuid.UUID | None, dict[uuid.UUID, None]] = {}
        self._tenant_of: dict[uuid.UUID, uuid.UUID | None] = {}
        self._executing: collections.Counter[uuid.UUID | None] = collections.Counter()
        self.live = 0

    # ---- queries -----------------------------------------------------------------------

    def waiting(self) -> int:
        """Runs waiting for a slot."""
        return len(self._tenant_of)

    def is_waiting(self, run_id: uuid.UUID) -> bool:
        return run_id in self._tenant_of

    def executing(self, tenant_id: uuid.UUID | None) -> int:
        """Runs of ``tenant_id`` holding a slot now."""
        return self._executing[tenant_id]

    def waiting_by_tenant(self) -> dict[uuid.UUID | None, int]:
        """Waiting runs per tenant (for queue-depth metrics)."""
        return {tenant: len(runs) for tenant, runs in self._waiting.items()}

    # ---- changes -----------------------------------------------------------------------

    def wait(self, run_id: uuid.UUID, tenant_id: uuid.UUID | None) -> None:
        """Queue a run at the end of its tenant's FIFO (a run already waiting keeps its
        place)."""
        if run_id in self._tenant_of:
            return
        self._tenant_of[run_id] = tenant_id
        self._waiting.setdefault(tenant_id, {})[run_id] = None

    def hold(self, slot: Slot) -> None:
        """Count an executing run (admitted, or a crashed actor's restart)."""
        self.live += 1
        self._executing[slot.tenant_id] += 1

    def release(self, slot: Slot) -> None:
        """A run gave its slot back (finished, crashed or handed off)."""
        self.live -= 1
        self._executing[slot.tenant_id] -= 1
        if self._executing[slot.tenant_id] <= 0:
            del self._executing[slot.tenant_id]

    def admit(self, skip: Callable[[uuid.UUID], bool] = lambda run_id: False) -> list[Slot]:
        """Take the runs that may start now, in fair order, and count them as executing.

        ``skip(run_id)`` true passes a run over for now (it keeps its place).
        """
        admitted: list[Slot] = []
        progress = True
        while progress and self.live < self.max_live and self._waiting:
            progress = False
            for tenant_id in list(self._waiting):
                if self.live >= self.max_live:
                    break
                slot = self._first_startable(tenant_id, skip)
                if slot is None:
                    continue
                self._take(slot)
                self.hold(slot)
                admitted.append(slot)
                progress = True
        return admitted

    # ---- internals ---------------------------------------------------------------------

    def _first_startable(
        self, tenant_id: uuid.UUID | None, skip: Callable[[uuid.UUID], bool]
    ) -> Slot | None:
        if self._executing[tenant_id] >= self.max_live_per_tenant:
            return None
        for run_id in self._waiting.get(tenant_id, {}):
            if not skip(run_id):
                return Slot(run_id, tenant_id)
        return None

    def _take(self, slot: Slot) -> None:
        del self._tenant_of[slot.run_id]
        runs = self._waiting.pop(slot.tenant_id)
        del runs[slot.run_id]
        if runs:  # the tenant had its turn: to the back of the rotation
            self._waiting[slot.tenant_id] = runs
