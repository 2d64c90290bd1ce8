"""Typed run errors: what the run service refuses, in runtime terms.

No HTTP here: ``web/errors.py`` is the one place that maps each class to a status and a
``detail`` (contract 1.2, 1.6, 1.7). Every class keeps the facts the answer needs.
"""

from __future__ import annotations

import uuid
from datetime import datetime


class RunError(Exception):
    """Base class of every refusal of the run service."""


class AppNotFound(RunError):
    """The app does not exist in the caller's tenant, or has no draft revision."""


class RunNotFound(RunError):
    """The run does not exist (or was deleted with its app)."""


class RevisionConflict(RunError):
    """``base_revision_id`` is not the app's current draft (contract 1.2 step 3)."""

    def __init__(self, latest_revision_id: uuid.UUID, latest_updated_at: datetime) -> None:
        super().__init__("Draft revision is stale")
        self.latest_revision_id = latest_revision_id
        self.latest_updated_at = latest_updated_at


class InputRequired(RunError):
    """The prompt is empty once stripped (contract 1.2 step 4)."""


class ModelUnavailable(RunError):
    """No chat model qualifies for the run (contract 1.2 step 6, contract 4)."""

    def __init__(self, *, requested: bool) -> None:
        super().__init__(
            "Selected model is unavailable for this tenant."
            if requested
            else "No active chat model is available for this tenant."
        )


class EngineRefused(RunError):
    """The engine is missing or its preflight refused the run (contract 1.2 step 7, 6).

    ``code`` is ``CODING_AGENT_ENGINE_UNAVAILABLE`` or
    ``CODING_AGENT_ENGINE_UNSUPPORTED_RUNTIME``.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class TenantQueueFull(RunError):
    """The tenant already has its cap of queued runs (docs/security.md, fair shares).

    ``retry_after_seconds`` tells the client when to try again.
    """

    retry_after_seconds = 10

    def __init__(self, limit: int) -> None:
        super().__init__(f"at most {limit} queued runs per tenant")
        self.limit = limit


class RunNotPaused(RunError):
    """Resume of a run that is not paused (contract 1.6)."""


class RunNotEnded(RunError):
    """A person's checkpoint restore names a run that has not ended (queued, running or
    paused; 409 ``RUN_NOT_ENDED``). Relinking it would move the revision its next
    checkpoint and auto-apply merge against while its workspace keeps other files
    (contract 1.9, docs/architecture.md "Workspaces"), so nothing is written.

    ``status`` is the run's status when the restore was refused."""

    def __init__(self, run_id: uuid.UUID, status: str) -> None:
        super().__init__(f"run {run_id} is {status}")
        self.run_id = run_id
        self.status = status


class RunUnresponsive(RunError):
    """The run's actor did not answer a command in time; the caller may retry."""


class RunActorFailed(RunError):
    """The run's actor crashed while handling a command; the Supervisor restarts it."""


class ApprovalNotPending(RunError):
    """A resume names an approval the run is not waiting for: the run is not paused on an
    approval request, or ``request_id`` is not the pending one (409).

    ``pending_request_id`` is the one the run waits for (None: it waits for none)."""

    def __init__(self, message: str, pending_request_id: str | None) -> None:
        super().__init__(message)
        self.message = message
        self.pending_request_id = pending_request_id


class ApprovalInvalid(RunError):
    """A resume of a run paused on an approval lacks its decision, or carries edited
    arguments the tool would refuse (422; ``code`` is the tool's or ``APPROVAL_*``)."""

    def __init__(self, code: str, message: str, field: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


class ResumeKeyReused(RunError):
    """A resume's ``Idempotency-Key`` was applied to this run with another body (422)."""


class SessionNotFound(RunError):
    """The session does not exist in this app and tenant (docs/design.md 10)."""


class SessionBusy(RunError):
    """A run of the session is active and the create's strategy is ``reject``.

    ``active_run_id`` and ``active_status`` name the run that holds the session.
    """

    def __init__(self, session_id: uuid.UUID, active_run_id: uuid.UUID, status: str) -> None:
        super().__init__(f"session {session_id} has an active run")
        self.session_id = session_id
        self.active_run_id = active_run_id
        self.active_status = status


class RunOwnerUnresponsive(RunError):
    """The node executing the run did not confirm a relayed cancel in time (or is gone);
    nothing is confirmed, the caller may retry (docs/architecture.md, "Several nodes")."""

    retry_after_seconds = 5

    def __init__(self, owner: str, timeout: float) -> None:
        super().__init__(f"node {owner} did not answer within {timeout:g} s")
        self.owner = owner
        self.timeout = timeout
