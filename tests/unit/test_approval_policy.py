"""Approval policy decisions and resume checks (runtime/approvals.py; issue 12 item 2)."""

from __future__ import annotations

import hashlib

import pytest

from runtime import approvals
from runtime.runs.errors import ApprovalInvalid, ApprovalNotPending
from runtime.settings import Settings
from runtime.tools.specs import TOOLS

LEGACY_ON = Settings(enable_legacy_write_file=True)
COMMANDS = {"coding_agent_run_targeted_tests", "coding_agent_build_worker_precheck"}
PATCHES = {
    "coding_agent_write_file", "coding_agent_apply_patch", "coding_agent_edit_file",
    "coding_agent_rename_file", "coding_agent_delete_file", "coding_agent_restore_checkpoint",
}  # fmt: skip


@pytest.mark.parametrize("tool", [spec.name for spec in TOOLS])
def test_each_tool_asks_exactly_under_its_policies(tool: str) -> None:
    asks = {p for p in approvals.POLICIES if approvals.tool_needs_approval(p, tool)}
    if tool in COMMANDS:
        assert asks == {"commands", "all"}
    elif tool in PATCHES:
        assert asks == {"patches", "all"}
    else:  # read-only tools ask only when everything does
        assert asks == {"all"}


def test_bare_slugs_unknown_tools_and_unknown_policies() -> None:
    assert approvals.tool_needs_approval("commands", "run_targeted_tests")
    assert not approvals.tool_needs_approval("patches", "no_such_tool")
    assert approvals.tool_needs_approval("all", "no_such_tool")
    # A policy this code does not know asks for everything (fail closed).
    assert approvals.tool_needs_approval("sometimes", "coding_agent_read_file")


@pytest.mark.parametrize(
    ("policy", "permission", "asks"),
    [
        ("none", "bash", False), ("commands", "bash", True), ("commands", "edit", False),
        ("patches", "edit", True), ("patches", "bash", False), ("all", "webfetch", True),
        ("commands", "webfetch", False),
    ],
)  # fmt: skip
def test_opencode_permissions_map_onto_the_same_policies(
    policy: str, permission: str, asks: bool
) -> None:
    assert approvals.permission_needs_approval(policy, permission) is asks


def test_a_run_without_a_stored_policy_asks_for_nothing() -> None:
    assert approvals.run_policy({}) == "none"
    assert approvals.run_policy({"context": {"approval_policy": "all"}}) == "all"
    assert approvals.run_timeout({"context": {"approval_timeout_seconds": 30}}) == 30.0
    assert approvals.run_timeout({"context": {}}) is None


ESCAPING = "--- a/../x.ts\n+++ b/../x.ts\n@@ -1 +1 @@\n-a\n+b\n"
PENDING = {"approval": {"request_id": "r1", "tool": "coding_agent_apply_patch",
                        "arguments": {}, "editable": True}}  # fmt: skip


def test_resume_checks() -> None:
    approvals.check_resume(None, None)  # an ordinary pause resumes as before
    approvals.check_resume(PENDING, {"request_id": "r1", "decision": "reject"})
    with pytest.raises(ApprovalNotPending) as wrong:
        approvals.check_resume(PENDING, {"request_id": "r2", "decision": "approve"})
    assert wrong.value.pending_request_id == "r1"
    with pytest.raises(ApprovalNotPending):
        approvals.check_resume({"position": 3}, {"request_id": "r1", "decision": "approve"})
    with pytest.raises(ApprovalInvalid) as missing:
        approvals.check_resume(PENDING, None)
    assert missing.value.code == "APPROVAL_REQUIRED"


@pytest.mark.parametrize(
    ("tool", "arguments", "code"),
    [
        ("coding_agent_apply_patch", {"patch": ESCAPING}, "BUILDER_PATCH_POLICY_VIOLATION"),
        ("coding_agent_write_file", {"path": "/etc/passwd.txt", "content": "x"},
         "BUILDER_PATCH_POLICY_VIOLATION"),
        ("coding_agent_rename_file", {"from_path": "src/a.ts", "to_path": "node_modules/a.ts"},
         "BUILDER_PATCH_POLICY_VIOLATION"),
        ("coding_agent_apply_patch", {"strip": 1}, "TOOL_INPUT_VALIDATION_FAILED"),
    ],
)  # fmt: skip
def test_edited_arguments_are_checked_like_a_models(tool: str, arguments: dict, code: str) -> None:
    pending = {"approval": {**PENDING["approval"], "tool": tool}}
    with pytest.raises(ApprovalInvalid) as refused:
        approvals.check_resume(
            pending, {"request_id": "r1", "decision": "approve", "arguments": arguments},
            settings=LEGACY_ON,
        )  # fmt: skip
    assert refused.value.code == code
    assert refused.value.field.startswith("approval.arguments")


def test_good_edits_pass_and_uneditable_requests_refuse_edits() -> None:
    approvals.check_resume(
        {"approval": {**PENDING["approval"], "tool": "coding_agent_write_file"}},
        {"request_id": "r1", "decision": "approve",
         "arguments": {"path": "src/ok.ts", "content": "x"}},
        settings=LEGACY_ON,
    )  # fmt: skip
    # A rejection's arguments are never used, so they are not checked.
    approvals.check_resume(
        PENDING, {"request_id": "r1", "decision": "reject", "arguments": {"patch": 1}}
    )
    opencode = {"approval": {**PENDING["approval"], "tool": "bash", "editable": False}}
    with pytest.raises(ApprovalInvalid) as refused:
        approvals.check_resume(
            opencode, {"request_id": "r1", "decision": "approve", "arguments": {"x": 1}}
        )
    assert refused.value.code == "APPROVAL_ARGUMENTS_NOT_EDITABLE"


def test_the_decision_read_back_from_a_resume_payload() -> None:
    decision = approvals.Decision.from_payload(
        {"approval": {"request_id": "r1", "decision": "reject", "message": "no"}}
    )
    assert decision == approvals.Decision("r1", False, None, "no")
    assert approvals.Decision.from_payload({"go": 1}) is None


def test_an_edited_patch_is_held_to_the_tools_size_limit() -> None:
    pending = {"approval": {**PENDING["approval"], "tool": "coding_agent_apply_patch"}}

    def approve(patch: str) -> None:
        approvals.check_resume(
            pending,
            {"request_id": "r1", "decision": "approve", "arguments": {"diff": patch}},
            settings=Settings(max_patch_bytes=1024),
        )

    approve("é" * 512)  # 1024 UTF-8 bytes: at the limit
    with pytest.raises(ApprovalInvalid) as refused:
        approve("é" * 512 + "x")
    assert refused.value.code == "PATCH_TOO_LARGE"
    assert refused.value.field == "approval.arguments.patch"
    assert refused.value.message == "Patch is 1025 bytes; the limit is 1024 bytes"


def _approve(tool: str, arguments: dict, stored: dict | None = None, **checks) -> None:
    """Approve ``tool``'s pending call with ``arguments``; ``stored``: more of the
    paused run's checkpoint (the native loop state)."""
    pending = {"approval": {**PENDING["approval"], "tool": tool}, **(stored or {})}
    approvals.check_resume(
        pending, {"request_id": "r1", "decision": "approve", "arguments": arguments}, **checks
    )


def _refusal(tool: str, arguments: dict, stored: dict | None = None, **checks) -> ApprovalInvalid:
    with pytest.raises(ApprovalInvalid) as refused:
        _approve(tool, arguments, stored, **checks)
    return refused.value


def test_an_edit_is_refused_for_a_tool_the_run_does_not_offer_or_has_switched_off() -> None:
    write = {"path": "src/ok.ts", "content": "x"}
    off = _refusal("coding_agent_write_file", write)  # the default: legacy write is off
    assert (off.code, off.field) == ("LEGACY_WRITE_FILE_DISABLED", "approval.arguments")
    narrowed = _refusal("coding_agent_write_file", write, settings=LEGACY_ON,
                        selection=("coding_agent_apply_patch",))  # fmt: skip
    assert (narrowed.code, narrowed.field) == ("TOOL_NOT_ALLOWED", "approval.arguments")
    _approve("coding_agent_write_file", write, settings=LEGACY_ON,
             selection=("coding_agent_write_file",))  # fmt: skip


def test_an_edited_checkpoint_id_must_be_a_revision_id() -> None:
    refused = _refusal("coding_agent_restore_checkpoint", {"checkpoint_id": "nope"})
    assert refused.code == "TOOL_INPUT_VALIDATION_FAILED"
    assert refused.field == "approval.arguments.checkpoint_revision_id"


def test_edited_expected_hashes_are_checked_against_the_paused_workspace() -> None:
    files = {"src/App.tsx": "export default 1;\n"}
    digest = hashlib.sha256(files["src/App.tsx"].encode()).hexdigest()
    stored = {approvals.NATIVE_STATE_KEY: {"files": files}}
    patch = {"patch": "--- a/src/App.tsx\n+++ b/src/App.tsx\n@@ -1 +1 @@\n-a\n+b\n"}
    for hashes, named in (({"src/App.tsx": "0" * 64}, "src/App.tsx"),
                          ({"src/Gone.tsx": digest}, "src/Gone.tsx")):  # fmt: skip
        stale = _refusal("coding_agent_apply_patch", {**patch, "expected_hashes": hashes}, stored)
        assert (stale.code, stale.field) == (
            "PATCH_PRECONDITION_FAILED",
            "approval.arguments.expected_hashes",
        )
        assert named in stale.message
    escaping = _refusal("coding_agent_apply_patch",
                        {**patch, "expected_hashes": {"../x.tsx": digest}}, stored)  # fmt: skip
    assert escaping.code == "BUILDER_PATCH_POLICY_VIOLATION"
    matching = {"src/App.tsx": "sha256:" + digest.upper()}
    _approve("coding_agent_apply_patch", {**patch, "expected_hashes": matching}, stored)
