"""The engine interface (docs/design.md section 5) and the events an engine yields.

An engine never touches the database or the run's state: it yields :data:`EngineEvent`
values from an async iterator running on the asyncio loop, and the run's actor decides what
they mean. Exactly one terminal event (:class:`Completed`, :class:`Failed` or
:class:`Paused`) ends a session; an iterator that ends without one fails the run
(fail-closed).
"""

from __future__ import annotations

import abc
import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# ---- events an engine yields ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Delta:
    """Assistant text as it is typed (becomes ``assistant.delta``)."""

    content: str


@dataclass(frozen=True, slots=True)
class ToolStarted:
    """A tool call began (``tool.started``): tool name, span id, input arguments."""

    tool: str
    span_id: str
    input: Any


@dataclass(frozen=True, slots=True)
class ToolFinished:
    """A tool call ended (``tool.completed``, or ``tool.failed`` when ``output`` is an
    object with a truthy ``error``; contract 3.4).

    ``diagnostics`` overrides the contract 3.4 enrichment when given (OpenCode tool errors
    carry only ``message`` and ``code``).
    """

    tool: str
    span_id: str
    output: Any
    diagnostics: list[dict[str, Any]] | None = None


@dataclass(frozen=True, slots=True)
class PlanUpdated:
    """A plan or step change (``plan.updated``) with an engine-specific payload."""

    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Completed:
    """Terminal: the engine finished. ``output`` is the final output (contract 3.5 reads
    ``last_agent_output`` / ``messages`` from it)."""

    output: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Failed:
    """Terminal: the engine failed. ``message`` becomes the run's error."""

    message: str
    diagnostics: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Paused:
    """Terminal for this session: the run waits for a resume payload. ``checkpoint`` is
    engine state stored on the run and handed back on resume.

    ``approval``: the tool call waiting for a person
    (:meth:`runtime.approvals.PendingApproval.as_dict`): the run's actor stores it in the
    checkpoint (key ``approval``), emits ``approval.requested`` with it and starts the
    pause timeout; the resume must decide it (:func:`runtime.approvals.check_resume`)."""

    checkpoint: dict[str, Any] = field(default_factory=dict)
    output: dict[str, Any] = field(default_factory=dict)
    approval: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class EngineRef:
    """The engine's upstream handle for the run (e.g. an OpenCode session id), stored as
    the run's ``engine_run_ref``. Not forwarded to clients."""

    ref: str


@dataclass(frozen=True, slots=True)
class RevisionsRecorded:
    """The agent made a checkpoint (contract 7.3): ``checkpoint`` becomes the run's
    checkpoint revision and ``result`` its result revision (None: keep the run's result,
    or ``checkpoint`` when it has none). The run's actor writes them; not forwarded."""

    checkpoint: uuid.UUID
    result: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class Transcript:
    """The messages the engine has added to the conversation so far in this session
    (OpenAI chat format: assistant replies with their ``tool_calls``, ``tool`` results as
    sent back to the model), each time it grows. Only for runs of a coding-agent session
    (``RunContext.session_id``): the run's actor keeps the latest one as the run's turns
    for the session's next runs (:mod:`runtime.sessions.history`). Not forwarded."""

    messages: tuple[dict[str, Any], ...]


@dataclass(frozen=True, slots=True)
class UsageReported:
    """One model call or tool call of the run ended; the run's actor records it
    (``agent_runs.usage_*``, ``run_usage``) and, for a model call, emits ``usage.updated``
    (issue 12 item 3).

    Attributes:
        kind: ``"model"`` or ``"tool"``.
        name: the provider's model id, or the tool's name.
        seconds: the call's wall time; None when the engine cannot tell (OpenCode steps).
        prompt_tokens, completion_tokens, total_tokens: as the model's endpoint reported
            them (:func:`runtime.usage.openai_counts`); None when it did not. Never
            estimated.
        call_id: identifies the call, so recording it twice counts it once.
    """

    kind: str
    name: str
    seconds: float | None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    call_id: uuid.UUID = field(default_factory=uuid.uuid4)


EngineEvent = (
    Delta | ToolStarted | ToolFinished | PlanUpdated | Completed | Failed | Paused | EngineRef
    | RevisionsRecorded | Transcript | UsageReported
)  # fmt: skip
TERMINAL_EVENTS = (Completed, Failed, Paused)


# ---- what an engine is given ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ModelTarget:
    """How to reach the run's pinned model: an OpenAI-compatible endpoint.

    Built server-side by :mod:`runtime.model_credentials` (docs/security.md):

    - ``api_key``: the key to send (opened from its sealed form, or read from an allowed
      environment variable); never in ``repr``, events, logs or errors.
    - ``api_key_env``: for an operator model whose key variable is allowed, its name (the
      OpenCode engine passes ``{env:NAME}`` instead of the value); None otherwise.
    - ``operator_trusted``: True for global (operator) models; a tenant's model (False)
      only connects where the egress policy allows (:mod:`runtime.egress`).
    - ``credential_error``: why the key cannot be used (the run then fails with it,
      before any connection); safe for the tenant to read.
    """

    model_id: uuid.UUID
    provider: str
    provider_model_id: str
    base_url: str
    api_key_env: str | None = None
    api_key: str | None = field(default=None, repr=False)
    operator_trusted: bool = False
    credential_error: str | None = None


@dataclass(frozen=True, slots=True)
class ResumeState:
    """Handed to an engine when a paused run continues (contract 1.6, docs/design.md 8.4)."""

    payload: dict[str, Any]
    checkpoint: dict[str, Any]


class PendingWorkspace:
    """A run's workspace that is made only when its engine first needs it (engines with
    :attr:`Engine.lazy_workspace`, on a fresh start).

    A native run whose model calls no tool never touches its files, so it never makes a
    copy of its base revision, and auto-apply and removal have nothing to do for it
    (docs/benchmarks.md, "Issue 11"). Once made it is the same workspace as an eager one.

    Args:
        path: where the workspace will be (``RunContext.workspace``).
        make: makes it (from the run's last checkpoint, else its base revision:
            :func:`runtime.checkpoints.workspace_origin`) and returns its path; called at
            most once.
    """

    def __init__(self, path: Path, make: Callable[[], Awaitable[Path]]) -> None:
        self.path = path
        self._make = make
        self._made: Path | None = None
        self._started = False
        self._lock = asyncio.Lock()

    @property
    def made(self) -> bool:
        """Whether making the workspace began: from then on it may exist and may have
        changed (a make cancelled half-way still counts, so its directory is removed)."""
        return self._started

    async def ready(self) -> Path:
        """The workspace, made on the first call (concurrent callers wait for one make).

        Raises:
            whatever ``make`` raises (a later call tries again).
        """
        async with self._lock:
            if self._made is None:
                self._started = True
                self._made = await self._make()
            return self._made


@dataclass(frozen=True, slots=True)
class RunContext:
    """Everything an engine may know about its run. Built server-side only: nothing in a
    model's tool arguments can change it (docs/design.md 8.7).

    ``input_params`` is the stored ``{input, messages, context}`` of contract section 2;
    ``workspace`` is the run's working directory (None until workspaces exist for it);
    ``workspace_pending``, when set, makes that directory: it does not exist until
    :meth:`PendingWorkspace.ready` returned;
    ``attempt`` counts actor restarts (0 on the first execution); ``session_id`` is the
    run's coding-agent session (None: a run without one), whose earlier turns are already
    in ``input_params["messages"]``. ``claim_token`` is the run's fencing token this
    execution holds (docs/design.md 9): a write an engine's tools make for the run carries
    it. ``checkpoint_base`` is the revision whose files the workspace held when it was
    made or last synced with the draft (the run's checkpoint, else its base revision): the
    merge base of the agent's next checkpoint.
    """

    run_id: uuid.UUID
    tenant_id: uuid.UUID
    app_id: uuid.UUID
    user_id: uuid.UUID | None
    engine: str
    input_params: dict[str, Any]
    model: ModelTarget | None
    workspace: Path | None = None
    engine_run_ref: str | None = None
    resume: ResumeState | None = None
    attempt: int = 0
    session_id: uuid.UUID | None = None
    claim_token: int | None = None
    checkpoint_base: uuid.UUID | None = None
    workspace_pending: PendingWorkspace | None = None

    @property
    def workspace_untouched(self) -> bool:
        """True when the run's workspace was to be made on first use and never was: its
        files cannot have changed (nothing to auto-apply, nothing to remove)."""
        return self.workspace_pending is not None and not self.workspace_pending.made

    @property
    def prompt(self) -> str:
        return str(self.input_params.get("input", ""))

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.input_params.get("messages", []))


@dataclass(frozen=True, slots=True)
class CancelOutcome:
    """Result of :meth:`EngineSession.cancel`: ``confirmed`` False fails the run closed
    (contract 1.7 / 6) with ``diagnostics`` (``[{code, message}]``)."""

    confirmed: bool
    diagnostics: list[dict[str, Any]] = field(default_factory=list)


# ---- the interface -------------------------------------------------------------------------


class EngineSession(abc.ABC):
    """One run's execution. Created by :meth:`Engine.open`; used from the asyncio loop."""

    @abc.abstractmethod
    def events(self) -> AsyncIterator[EngineEvent]:
        """Yield events until one terminal event. Cancelling the consuming task must stop
        every upstream connection and subprocess before the CancelledError propagates."""

    async def cancel(self) -> CancelOutcome:
        """Ask the upstream to stop (called before the consuming task is cancelled).

        The default (engines whose work lives in the consuming task) is confirmed: the
        task's cancellation itself is the stop, and the actor waits for it.
        """
        return CancelOutcome(confirmed=True)

    async def close(self) -> None:  # noqa: B027 - optional hook, no-op by default
        """Release resources; always called once the session is over."""


class EngineError(Exception):
    """Base class of engine preflight errors (contract 1.2 codes)."""

    code = "CODING_AGENT_ENGINE_UNAVAILABLE"

    def detail(self) -> dict[str, str]:
        return {"code": self.code, "field": "engine", "message": str(self)}


class EngineUnavailable(EngineError):
    """The engine is disabled or unhealthy (400 CODING_AGENT_ENGINE_UNAVAILABLE)."""

    code = "CODING_AGENT_ENGINE_UNAVAILABLE"


class EngineUnsupportedRuntime(EngineError):
    """The engine cannot serve this principal or workspace (400 ..._UNSUPPORTED_RUNTIME)."""

    code = "CODING_AGENT_ENGINE_UNSUPPORTED_RUNTIME"


@dataclass(frozen=True, slots=True)
class PreflightRequest:
    """What an engine checks at run creation (contract 1.2 step 7, section 6)."""

    tenant_id: uuid.UUID
    app_id: uuid.UUID
    user_id: uuid.UUID | None
    workspace: Path | None  # where the run's own workspace will be made (not yet made)
    model: ModelTarget | None


class Engine(abc.ABC):
    """An execution engine, shared by all runs of a process.

    ``uses_workspace``: the run gets its own workspace, made from its base revision (a
    restarted attempt's from its last checkpoint; :mod:`runtime.run_workspaces`), and a
    completed run's workspace is auto-applied as a revision. ``lazy_workspace``: see below.
    ``preflight_uses_model``, ``preflight_uses_workspace``: see below (engines keeping the
    default preflight set both False).
    """

    name: str
    uses_workspace: bool = True
    #: Whether a fresh run's workspace is made only when the engine first needs it
    #: (``RunContext.workspace_pending``); restarted and resumed runs get theirs made.
    lazy_workspace: bool = False
    #: Whether :meth:`preflight` reads ``PreflightRequest.model``; when False, run creation
    #: skips the model's binding lookup and passes ``model=None``.
    preflight_uses_model: bool = True
    #: Whether :meth:`preflight` reads ``PreflightRequest.workspace``; when False, run
    #: creation passes ``workspace=None`` and skips a worker-thread trip to create its
    #: parent directory.
    preflight_uses_workspace: bool = True

    async def preflight(self, request: PreflightRequest) -> dict[str, Any]:
        """Check the engine can take this run; return context to store on the run.

        Raises:
            EngineUnavailable, EngineUnsupportedRuntime: with the contract's messages.
        """
        return {}

    @abc.abstractmethod
    def open(self, ctx: RunContext) -> EngineSession:
        """Create the session for one run execution (no I/O here; do it in ``events``)."""

    async def start(self) -> None:  # noqa: B027 - optional hook, no-op by default
        """Called once at service start (e.g. launch a managed server)."""

    async def stop(self) -> None:  # noqa: B027 - optional hook, no-op by default
        """Called once at service shutdown."""
