"""Human approval of tool calls: the policy rules and the resume checks (issue 12 item 2,
docs/design.md section 10). Plain functions, no I/O.

A policy names which tool calls of a run wait for a person before they run:

- ``none``: none (the default; runs behave as before approvals existed);
- ``commands``: tools that run commands (``run_targeted_tests``, ``build_worker_precheck``;
  OpenCode's ``bash``);
- ``patches``: tools that write files (``write_file``, ``apply_patch``, ``edit_file``,
  ``rename_file``, ``delete_file``, ``restore_checkpoint``; OpenCode's ``edit``);
- ``all``: every tool call (OpenCode: every permission it asks).

A run's policy is its create field, else its app's default (``published_apps.
approval_policy``), fixed at creation. An engine that meets a call needing approval ends its
session with :class:`runtime.engine.Paused` carrying a :class:`PendingApproval` (as a dict,
:meth:`PendingApproval.as_dict`); the decision comes back in the resume payload's
``approval`` (:class:`Decision`), checked here before the run is queued again.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from runtime.paths import PathPolicyError
from runtime.runs.errors import ApprovalInvalid, ApprovalNotPending
from runtime.settings import Settings
from runtime.tools.checkpoints import checkpoint_id
from runtime.tools.errors import ToolError
from runtime.tools.patch import check_patch_preconditions
from runtime.tools.selection import NOT_ALLOWED, allowed
from runtime.tools.specs import PREFIX, spec_for

Policy = Literal["none", "commands", "patches", "all"]
Category = Literal["commands", "patches"]

POLICIES: Final = ("none", "commands", "patches", "all")
DEFAULT_POLICY: Final = "none"

COMMAND_TOOLS: Final = frozenset({"run_targeted_tests", "build_worker_precheck"})
PATCH_TOOLS: Final = frozenset(
    {"write_file", "apply_patch", "edit_file", "rename_file", "delete_file", "restore_checkpoint"}
)
#: OpenCode permission names (its HTTP API's ``permission.asked``) by category.
OPENCODE_PERMISSIONS: Final[dict[str, Category]] = {"bash": "commands", "edit": "patches"}

MAX_MESSAGE_CHARS: Final = 10_000

NATIVE_STATE_KEY: Final = "native"
"""Where the native engine keeps its loop state in a paused run's checkpoint."""


def slug(tool: str) -> str:
    """The toolpack slug of a function name: ``coding_agent_apply_patch`` -> ``apply_patch``."""
    return tool.removeprefix(PREFIX)


def category(tool: str) -> Category | None:
    """Which policy category a native tool falls in, None for read-only tools."""
    name = slug(tool)
    if name in COMMAND_TOOLS:
        return "commands"
    if name in PATCH_TOOLS:
        return "patches"
    return None


def needs_approval(policy: str, kind: Category | None) -> bool:
    """Whether a call of category ``kind`` waits for a person under ``policy``.

    An unknown policy asks for everything (fail closed: a stored value this code does not
    know must not let calls through)."""
    if policy == "none":
        return False
    if policy in ("commands", "patches"):
        return kind == policy
    return True


def tool_needs_approval(policy: str, tool: str) -> bool:
    """:func:`needs_approval` for a native tool call by its function name."""
    return needs_approval(policy, category(tool))


def permission_needs_approval(policy: str, permission: str) -> bool:
    """:func:`needs_approval` for an OpenCode permission request (``bash``, ``edit``, ...);
    permissions outside both categories ask only under ``all``."""
    return needs_approval(policy, OPENCODE_PERMISSIONS.get(permission))


def run_policy(input_params: Mapping[str, Any]) -> str:
    """The policy stored on a run at creation (``input_params.context.approval_policy``);
    ``none`` for runs created before approvals existed."""
    context = input_params.get("context")
    policy = context.get("approval_policy") if isinstance(context, Mapping) else None
    return policy if isinstance(policy, str) else DEFAULT_POLICY


def run_timeout(input_params: Mapping[str, Any]) -> float | None:
    """The seconds a pause on approval may last for this run (set at creation)."""
    context = input_params.get("context")
    value = context.get("approval_timeout_seconds") if isinstance(context, Mapping) else None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


@dataclass(frozen=True, slots=True)
class PendingApproval:
    """A tool call waiting for a decision: what ``approval.requested`` carries.

    Attributes:
        request_id: the id a resume must name (unique per pause).
        tool: the tool's name (native: ``coding_agent_*``; OpenCode: its permission,
            e.g. ``bash``).
        arguments: the call's arguments as the model gave them (parsed JSON when it was
            JSON, else the raw text under ``raw``).
        editable: whether a decision may replace the arguments (OpenCode's may not).
    """

    request_id: str
    tool: str
    arguments: Any
    editable: bool = True

    def as_dict(self) -> dict[str, Any]:
        """The event payload and the form stored in the run's checkpoint."""
        return {
            "request_id": self.request_id,
            "tool": self.tool,
            "arguments": self.arguments,
            "editable": self.editable,
        }


@dataclass(frozen=True, slots=True)
class Decision:
    """A person's answer to a :class:`PendingApproval` (the resume body's ``approval``)."""

    request_id: str
    approve: bool
    arguments: dict[str, Any] | None = None
    message: str | None = None

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any] | None) -> Decision | None:
        """The decision stored in a resume payload's ``approval``, or None."""
        raw = payload.get("approval") if isinstance(payload, Mapping) else None
        if not isinstance(raw, Mapping):
            return None
        arguments = raw.get("arguments")
        message = raw.get("message")
        return cls(
            request_id=str(raw.get("request_id", "")),
            approve=raw.get("decision") == "approve",
            arguments=dict(arguments) if isinstance(arguments, Mapping) else None,
            message=message if isinstance(message, str) else None,
        )


def pending_of(checkpoint: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The pending approval stored in a paused run's checkpoint, or None."""
    pending = checkpoint.get("approval") if isinstance(checkpoint, Mapping) else None
    return dict(pending) if isinstance(pending, Mapping) else None


def same_decision(resume_payload: Mapping[str, Any] | None, approval: Mapping[str, Any]) -> bool:
    """Whether ``approval`` repeats the decision stored with a run's last resume
    (``resume_payload.approval``, written with the requeue): same ``request_id``,
    ``decision``, ``arguments`` and ``message``. Such a resume was applied already (its
    answer may have been a 503 lost to a slow actor) and is answered with the run, not
    409; a different decision on that request stays refused."""
    stored = resume_payload.get("approval") if isinstance(resume_payload, Mapping) else None
    if not isinstance(stored, Mapping) or not approval.get("request_id"):
        return False
    keys = ("request_id", "decision", "arguments", "message")
    return all(stored.get(key) == approval.get(key) for key in keys)


def check_resume(
    checkpoint: Mapping[str, Any] | None,
    approval: Mapping[str, Any] | None,
    *,
    settings: Settings | None = None,
    selection: Collection[str] | None = None,
) -> None:
    """Check a resume's ``approval`` against the paused run's pending request.

    A run paused without an approval request resumes as before, with no ``approval``.
    ``settings``: the toolpack's (command allowlist, ``RUNWRIGHT_MAX_PATCH_BYTES``, ...),
    for edited arguments (:func:`check_arguments`); None: the defaults. ``selection``: the
    run's tool selection (:func:`runtime.tools.selection.run_selection`, None: all).

    Raises:
        ApprovalNotPending: an ``approval`` for a run not paused on one (409), or a
            ``request_id`` that is not the pending one (409).
        ApprovalInvalid: a run paused on an approval resumed without a decision, or with
            edited arguments the tool would refuse (422).
    """
    pending = pending_of(checkpoint)
    if approval is None:
        if pending is not None:
            raise ApprovalInvalid(
                "APPROVAL_REQUIRED",
                "The run waits for an approval decision: send approval.request_id "
                f"{pending.get('request_id')!r} with decision 'approve' or 'reject'",
                "approval",
            )
        return
    if pending is None:
        raise ApprovalNotPending("The run is not paused on an approval request", None)
    if approval.get("request_id") != pending.get("request_id"):
        raise ApprovalNotPending(
            "approval.request_id is not the run's pending approval request",
            str(pending.get("request_id")),
        )
    arguments = approval.get("arguments")
    if arguments is None or approval.get("decision") != "approve":
        return
    if not pending.get("editable", True):
        raise ApprovalInvalid(
            "APPROVAL_ARGUMENTS_NOT_EDITABLE",
            "This engine cannot run a call with edited arguments; approve or reject it as is",
            "approval.arguments",
        )
    check_arguments(
        str(pending.get("tool", "")), arguments, settings,
        selection=selection, files=paused_files(checkpoint),
    )  # fmt: skip


def paused_files(checkpoint: Mapping[str, Any] | None) -> dict[str, str] | None:
    """The workspace a native pause stored (``{path: text}``, the loop state's ``files``
    under :data:`NATIVE_STATE_KEY`): exactly what the approved call runs on, since the
    resume restores it first. None when the checkpoint holds none (another engine)."""
    state = checkpoint.get(NATIVE_STATE_KEY) if isinstance(checkpoint, Mapping) else None
    files = state.get("files") if isinstance(state, Mapping) else None
    if not isinstance(files, Mapping):
        return None
    return {str(path): text for path, text in files.items() if isinstance(text, str)}


def check_arguments(
    tool: str,
    arguments: Mapping[str, Any],
    settings: Settings | None = None,
    *,
    selection: Collection[str] | None = None,
    files: Mapping[str, str] | None = None,
) -> None:
    """Validate edited arguments as a model's call is checked (contract 7.2, README
    "Approving tool calls"): the run offers the tool (``selection``, the run's tool
    selection; None: all); the arguments bind to the tool's fields and pass the tool's own
    argument rules (:meth:`runtime.tools.specs.ToolSpec.checked_arguments`: the tool is
    switched on, the path policy, the command allowlist, the size limit of what it
    writes, the form of a checkpoint id), with ``settings`` as the tool has them; an
    apply_patch's ``expected_hashes`` match ``files``, the paused run's stored workspace
    (:func:`paused_files`). The tool checks again when it runs (symlinks, existing files);
    whether a restore's checkpoint belongs to the app needs storage: the run service checks
    it (:meth:`runtime.runs.service.RunService.resume`).

    Raises:
        ApprovalInvalid: with the tool's code (``TOOL_NOT_ALLOWED``,
            ``TOOL_INPUT_VALIDATION_FAILED``, ``LEGACY_WRITE_FILE_DISABLED``,
            ``PATCH_TOO_LARGE``, ``PATCH_PRECONDITION_FAILED``,
            ``BUILDER_PATCH_POLICY_VIOLATION``) and the field at fault
            (``approval.arguments.<field>``, or ``approval.arguments``).
    """
    spec = spec_for(tool)
    if spec is None:
        return  # not a toolpack tool: nothing to bind the arguments to
    if not allowed(selection, spec.name):
        raise ApprovalInvalid(
            NOT_ALLOWED, f"{spec.name} is not offered to this run (its tools selection)",
            "approval.arguments",
        )  # fmt: skip
    try:
        bound = spec.checked_arguments(dict(arguments), settings or Settings())
        if spec.slug == "apply_patch" and files is not None:
            check_patch_preconditions(bound, files)
    except PathPolicyError as exc:
        raise ApprovalInvalid(exc.code, exc.message, f"approval.arguments.{exc.field}") from exc
    except ToolError as exc:
        field = f"approval.arguments.{exc.field}" if exc.field else "approval.arguments"
        raise ApprovalInvalid(exc.code, exc.message, field) from exc


def edited_checkpoint_id(
    checkpoint: Mapping[str, Any] | None,
    approval: Mapping[str, Any] | None,
    settings: Settings | None = None,
) -> uuid.UUID | None:
    """The checkpoint an approval's edited arguments would have the paused
    restore_checkpoint call restore, or None: no such edit on the run's pending request,
    or arguments :func:`check_resume` refuses anyway. Whether that revision belongs to the
    run's app needs storage: the run service looks it up before the decision is sent
    (the model's own call is refused by the tool the same way)."""
    pending = pending_of(checkpoint)
    arguments = approval.get("arguments") if isinstance(approval, Mapping) else None
    if pending is None or approval is None or not isinstance(arguments, Mapping):
        return None
    if approval.get("decision") != "approve" or approval.get("request_id") != pending.get(
        "request_id"
    ):
        return None
    spec = spec_for(str(pending.get("tool", "")))
    if spec is None or spec.slug != "restore_checkpoint":
        return None
    try:
        return checkpoint_id(spec.checked_arguments(dict(arguments), settings or Settings()))
    except (ToolError, PathPolicyError):
        return None  # check_resume answers with the tool's detail
