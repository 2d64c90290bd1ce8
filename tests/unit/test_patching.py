"""The patch engine (contract 7.4 and 10 "test_patch_runtime.py", docs/design.md 8.9)."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime.patching import (
    MAX_HUNK_OFFSET,
    apply_patch,
    codes,
    make_unified_diff,
    tool_envelope,
    verification_plan,
)
from runtime.patching.targets import strip_components
from runtime.textlines import line_window

APP = "src/App.tsx"


def make_workspace(root: Path, files: dict[str, str | bytes]) -> Path:
    for relative, content in files.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        data = content.encode() if isinstance(content, str) else content
        target.write_bytes(data)
    return root


def read(root: Path, relative: str) -> str:
    return (root / relative).read_bytes().decode()


def numbered(count: int, prefix: str = "line") -> str:
    return "".join(f"{prefix} {n}\n" for n in range(1, count + 1))


# ---- the contract's tests (section 10, test_patch_runtime.py), re-expressed --------------


def test_success_is_atomic_and_updates_file(tmp_path: Path) -> None:
    make_workspace(tmp_path, {APP: "export const title = 'old';\nexport default title;\n"})
    patch = (
        "diff --git a/src/App.tsx b/src/App.tsx\n"
        "index 1111111..2222222 100644\n"
        "--- a/src/App.tsx\n"
        "+++ b/src/App.tsx\n"
        "@@ -1 +1 @@\n"
        "-export const title = 'old';\n"
        "+export const title = 'new';\n"
    )
    result = apply_patch(tmp_path, patch)
    assert result["ok"] is True
    assert result["code"] == codes.PATCH_APPLIED
    assert APP in result["applied_files"]
    assert read(tmp_path, APP) == "export const title = 'new';\nexport default title;\n"
    window = line_window(read(tmp_path, APP), start_line=1, end_line=1, with_line_numbers=True)
    assert "1: export const title = 'new';" in window.content
    assert set(result) == {
        "ok", "code", "summary", "failures", "applied_files", "hunk_offsets", "metrics"
    }  # fmt: skip
    assert result["metrics"]["patch_bytes"] == len(patch.encode())
    assert result["metrics"]["applied_file_count"] == 1
    assert result["metrics"]["failure_count"] == 0
    assert isinstance(result["metrics"]["edit_latency_ms"], int)


def test_hunk_mismatch_returns_failures_without_mutation(tmp_path: Path) -> None:
    original = "const a = 1;\nconst b = 2;\n"
    make_workspace(tmp_path, {APP: original})
    patch = "--- a/src/App.tsx\n+++ b/src/App.tsx\n@@ -1 +1 @@\n-const a = 999;\n+const a = 2;\n"
    result = apply_patch(tmp_path, patch)
    assert result["ok"] is False
    assert result["code"] == codes.PATCH_HUNK_MISMATCH
    assert result["applied_files"] == []
    failure = result["failures"][0]
    assert failure["reason"] in {codes.CONTEXT_MISMATCH, codes.DELETION_MISMATCH}
    assert failure["path"] == APP
    assert failure["hunk_index"] == 1
    assert failure["expected_start_line"] == 1
    assert failure["actual_context_preview"] == ["1: const a = 1;", "2: const b = 2;"]
    assert failure["recommended_refresh"] == {"start_line": 1, "end_line": 14}
    assert read(tmp_path, APP) == original


def test_precondition_hash_mismatch(tmp_path: Path) -> None:
    original = "const a = 1;\n"
    make_workspace(tmp_path, {APP: original})
    patch = "--- a/src/App.tsx\n+++ b/src/App.tsx\n@@ -1 +1 @@\n-const a = 1;\n+const a = 2;\n"
    result = apply_patch(tmp_path, patch, expected_hashes={APP: "sha256:deadbeef"})
    assert result["code"] == codes.PATCH_PRECONDITION_FAILED
    assert result["summary"] == "1 precondition(s) failed"
    failure = result["failures"][0]
    assert failure["reason"] == codes.PRECONDITION_HASH_MISMATCH
    assert failure["recommended_refresh"] == {"start_line": 1, "end_line": 200}
    assert read(tmp_path, APP) == original


def test_precondition_checked_before_parsing(tmp_path: Path) -> None:
    make_workspace(tmp_path, {APP: "x\n"})
    result = apply_patch(tmp_path, "not a patch", expected_hashes={APP: "deadbeef"})
    assert result["code"] == codes.PATCH_PRECONDITION_FAILED


@pytest.mark.parametrize("prefix", ["", "sha256:", "SHA256:"])
def test_matching_precondition_applies(tmp_path: Path, prefix: str) -> None:
    make_workspace(tmp_path, {APP: "const a = 1;\n"})
    digest = hashlib.sha256(b"const a = 1;\n").hexdigest()
    patch = "--- a/src/App.tsx\n+++ b/src/App.tsx\n@@ -1 +1 @@\n-const a = 1;\n+const a = 2;\n"
    result = apply_patch(tmp_path, patch, expected_hashes={APP: prefix + digest})
    assert result["code"] == codes.PATCH_APPLIED


def test_precondition_on_missing_file_fails(tmp_path: Path) -> None:
    result = apply_patch(tmp_path, "x", expected_hashes={"src/nope.ts": "00"})
    assert result["code"] == codes.PATCH_PRECONDITION_FAILED
    assert result["failures"][0]["path"] == "src/nope.ts"


def test_begin_patch_update_file_with_bare_marker(tmp_path: Path) -> None:
    make_workspace(tmp_path, {APP: "import x;\nconst title = 'old';\nexport default title;\n"})
    patch = (
        "*** Begin Patch\n"
        "*** Update File: src/App.tsx\n"
        "@@\n"
        " import x;\n"
        "-const title = 'old';\n"
        "+const title = 'new';\n"
        "*** End Patch\n"
    )
    result = apply_patch(tmp_path, patch)
    assert result["ok"] is True
    assert result["code"] == codes.PATCH_APPLIED
    assert "const title = 'new';" in read(tmp_path, APP)
    assert read(tmp_path, APP) == "import x;\nconst title = 'new';\nexport default title;\n"


# ---- strip (docs/design.md 8.9: strip 0 honoured, only git-prefixed paths stripped) ------------


@pytest.mark.parametrize(
    ("path", "strip", "expected"),
    [
        ("a/src/App.tsx", 1, "src/App.tsx"),
        ("b/src/App.tsx", 1, "src/App.tsx"),
        ("src/App.tsx", 1, "src/App.tsx"),
        ("a/src/App.tsx", 0, "a/src/App.tsx"),
        ("a/app/src/x.ts", 2, "src/x.ts"),
        ("app/src/x.ts", 2, "app/src/x.ts"),
        ("a/App.tsx", 2, "a/App.tsx"),
        ("a\\src\\x.ts", 1, "src/x.ts"),
    ],
)
def test_strip_rule(path: str, strip: int, expected: str) -> None:
    assert strip_components(path, strip) == expected


def test_plain_paths_are_not_stripped_by_default(tmp_path: Path) -> None:
    make_workspace(tmp_path, {APP: "one\n", "App.tsx": "one\n"})
    patch = "--- src/App.tsx\n+++ src/App.tsx\n@@ -1 +1 @@\n-one\n+two\n"
    result = apply_patch(tmp_path, patch)
    assert result["applied_files"] == [APP]
    assert read(tmp_path, APP) == "two\n"
    assert read(tmp_path, "App.tsx") == "one\n"


def test_strip_zero_is_honoured(tmp_path: Path) -> None:
    make_workspace(tmp_path, {"a/src/x.ts": "one\n", "src/x.ts": "one\n"})
    patch = "--- a/src/x.ts\n+++ a/src/x.ts\n@@ -1 +1 @@\n-one\n+two\n"
    result = apply_patch(tmp_path, patch, strip=0)
    assert result["applied_files"] == ["a/src/x.ts"]
    assert read(tmp_path, "a/src/x.ts") == "two\n"
    assert read(tmp_path, "src/x.ts") == "one\n"


def test_strip_two(tmp_path: Path) -> None:
    make_workspace(tmp_path, {"src/x.ts": "one\n"})
    patch = "--- a/app/src/x.ts\n+++ b/app/src/x.ts\n@@ -1 +1 @@\n-one\n+two\n"
    assert apply_patch(tmp_path, patch, strip=2)["applied_files"] == ["src/x.ts"]


@pytest.mark.parametrize("strip", [-1, 4])
def test_strip_out_of_range_is_rejected(tmp_path: Path, strip: int) -> None:
    with pytest.raises(ValueError, match="strip"):
        apply_patch(tmp_path, "x", strip=strip)


# ---- trailing newlines (docs/design.md 8.9: preserved) -----------------------------------------


def test_trailing_newline_is_preserved(tmp_path: Path) -> None:
    make_workspace(tmp_path, {APP: "a\nb\nc\n"})
    patch = "--- a/src/App.tsx\n+++ b/src/App.tsx\n@@ -2,2 +2,2 @@\n-b\n+B\n c\n"
    assert apply_patch(tmp_path, patch)["ok"]
    assert read(tmp_path, APP) == "a\nB\nc\n"


def test_missing_trailing_newline_is_preserved(tmp_path: Path) -> None:
    make_workspace(tmp_path, {APP: "a\nb\nc"})
    patch = "--- a/src/App.tsx\n+++ b/src/App.tsx\n@@ -1,2 +1,2 @@\n-a\n+A\n b\n"
    assert apply_patch(tmp_path, patch)["ok"]
    assert read(tmp_path, APP) == "A\nb\nc"


def test_no_newline_marker_removes_final_newline(tmp_path: Path) -> None:
    make_workspace(tmp_path, {APP: "a\nb\n"})
    patch = (
        "--- a/src/App.tsx\n+++ b/src/App.tsx\n@@ -2 +2 @@\n-b\n+B\n\\ No newline at end of file\n"
    )
    assert apply_patch(tmp_path, patch)["ok"]
    assert read(tmp_path, APP) == "a\nB"


def test_no_newline_marker_on_old_side_adds_final_newline(tmp_path: Path) -> None:
    make_workspace(tmp_path, {APP: "a\nb"})
    patch = (
        "--- a/src/App.tsx\n+++ b/src/App.tsx\n@@ -2 +2 @@\n-b\n\\ No newline at end of file\n+b\n"
    )
    assert apply_patch(tmp_path, patch)["ok"]
    assert read(tmp_path, APP) == "a\nb\n"


def test_begin_patch_preserves_missing_final_newline(tmp_path: Path) -> None:
    make_workspace(tmp_path, {APP: "a\nb"})
    patch = "*** Begin Patch\n*** Update File: src/App.tsx\n@@\n-a\n+A\n*** End Patch"
    assert apply_patch(tmp_path, patch)["ok"]
    assert read(tmp_path, APP) == "A\nb"


# ---- path policy (docs/design.md 8.9: it applies to apply_patch too) ---------------------------


@pytest.mark.parametrize(
    "bad_path",
    [
        "../outside.ts",
        "src/../../outside.ts",
        "/etc/passwd.txt",
        "node_modules/pkg/index.js",
        ".git/config.json",
        "dist/bundle.js",
        "src/tool.py",
        "src/Makefile",
    ],
)
def test_policy_rejects_unified_paths(tmp_path: Path, bad_path: str) -> None:
    make_workspace(tmp_path, {APP: "one\n"})
    patch = (
        "--- a/src/App.tsx\n+++ b/src/App.tsx\n@@ -1 +1 @@\n-one\n+two\n"
        f"--- /dev/null\n+++ {bad_path}\n@@ -0,0 +1 @@\n+evil\n"
    )
    result = apply_patch(tmp_path, patch, atomic=False)
    assert result["code"] == codes.PATCH_POLICY_VIOLATION
    assert result["ok"] is False
    assert result["applied_files"] == []
    assert result["failures"][0]["reason"] == codes.PATH_POLICY_VIOLATION
    assert result["failures"][0]["path"] == bad_path
    assert read(tmp_path, APP) == "one\n"  # nothing written, even with atomic=False
    assert not (tmp_path.parent / "outside.ts").exists()


def test_policy_rejects_begin_patch_paths(tmp_path: Path) -> None:
    patch = "*** Begin Patch\n*** Add File: ../escape.ts\n+x\n*** End Patch\n"
    result = apply_patch(tmp_path, patch)
    assert result["code"] == codes.PATCH_POLICY_VIOLATION
    assert "Path traversal is not allowed" in result["summary"]


def test_policy_rejects_move_destination(tmp_path: Path) -> None:
    make_workspace(tmp_path, {APP: "one\n"})
    patch = "*** Begin Patch\n*** Update File: src/App.tsx\n*** Move to: node_modules/x.ts\n"
    result = apply_patch(tmp_path, patch)
    assert result["code"] == codes.PATCH_POLICY_VIOLATION
    assert (tmp_path / APP).exists()


def test_policy_rejects_symlink_escape(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.ts").write_text("secret\n")
    root = tmp_path / "ws"
    root.mkdir()
    (root / "src").symlink_to(outside, target_is_directory=True)
    patch = "--- a/src/secret.ts\n+++ b/src/secret.ts\n@@ -1 +1 @@\n-secret\n+owned\n"
    result = apply_patch(root, patch)
    assert result["code"] == codes.PATCH_POLICY_VIOLATION
    assert (outside / "secret.ts").read_text() == "secret\n"


def test_deleting_existing_file_skips_extension_check(tmp_path: Path) -> None:
    make_workspace(tmp_path, {"scripts/tool.py": "print(1)\n"})
    patch = "*** Begin Patch\n*** Delete File: scripts/tool.py\n*** End Patch\n"
    result = apply_patch(tmp_path, patch)
    assert result["code"] == codes.PATCH_APPLIED
    assert result["applied_files"] == ["scripts/tool.py"]
    assert not (tmp_path / "scripts/tool.py").exists()


def test_deleting_blocked_file_is_still_rejected(tmp_path: Path) -> None:
    make_workspace(tmp_path, {"node_modules/x.js": "x\n"})
    patch = "*** Begin Patch\n*** Delete File: node_modules/x.js\n*** End Patch\n"
    assert apply_patch(tmp_path, patch)["code"] == codes.PATCH_POLICY_VIOLATION
    assert (tmp_path / "node_modules/x.js").exists()


# ---- offset search (docs/design.md 8.9), reported in hunk_offsets -----------------------------


def test_hunk_found_at_offset_and_reported(tmp_path: Path) -> None:
    make_workspace(tmp_path, {APP: "// new header\n" * 5 + numbered(10)})
    patch = (
        "--- a/src/App.tsx\n+++ b/src/App.tsx\n"
        "@@ -3,3 +3,3 @@\n line 3\n-line 4\n+LINE 4\n line 5\n"
    )
    result = apply_patch(tmp_path, patch)
    assert result["code"] == codes.PATCH_APPLIED
    assert result["hunk_offsets"] == [
        {
            "path": APP,
            "hunk_index": 1,
            "expected_start_line": 3,
            "applied_start_line": 8,
            "offset": 5,
        }
    ]
    assert "offset" in result["summary"]
    assert read(tmp_path, APP).splitlines()[8] == "LINE 4"


def test_later_hunks_follow_the_drift(tmp_path: Path) -> None:
    make_workspace(tmp_path, {APP: numbered(40)})
    patch = (
        "--- a/src/App.tsx\n+++ b/src/App.tsx\n"
        "@@ -10,3 +10,3 @@\n line 13\n-line 14\n+LINE 14\n line 15\n"
        "@@ -30,3 +30,3 @@\n line 33\n-line 34\n+LINE 34\n line 35\n"
    )
    result = apply_patch(tmp_path, patch)
    assert result["ok"]
    assert [item["offset"] for item in result["hunk_offsets"]] == [3, 3]
    lines = read(tmp_path, APP).splitlines()
    assert lines[13] == "LINE 14" and lines[33] == "LINE 34"


def test_hunk_at_declared_line_reports_no_offset(tmp_path: Path) -> None:
    make_workspace(tmp_path, {APP: numbered(5)})
    patch = "--- a/src/App.tsx\n+++ b/src/App.tsx\n@@ -2 +2 @@\n-line 2\n+two\n"
    assert apply_patch(tmp_path, patch)["hunk_offsets"] == []


def test_offset_search_prefers_nearest_match(tmp_path: Path) -> None:
    # "x" occurs 2 lines above and 3 lines below the declared line 5.
    make_workspace(tmp_path, {APP: "a\nb\nx\nc\nd\ne\nf\ng\nx\n"})
    patch = "--- a/src/App.tsx\n+++ b/src/App.tsx\n@@ -5 +5 @@\n-x\n+X\n"
    result = apply_patch(tmp_path, patch)
    assert result["hunk_offsets"][0]["offset"] == -2
    assert read(tmp_path, APP) == "a\nb\nX\nc\nd\ne\nf\ng\nx\n"


def test_offset_search_is_bounded(tmp_path: Path) -> None:
    original = "pad\n" * (MAX_HUNK_OFFSET + 5) + "target\n"
    make_workspace(tmp_path, {APP: original})
    patch = "--- a/src/App.tsx\n+++ b/src/App.tsx\n@@ -1 +1 @@\n-target\n+moved\n"
    result = apply_patch(tmp_path, patch)
    assert result["code"] == codes.PATCH_HUNK_MISMATCH
    assert result["failures"][0]["reason"] == codes.DELETION_MISMATCH
    assert read(tmp_path, APP) == original


def test_context_is_matched_exactly_no_fuzz(tmp_path: Path) -> None:
    make_workspace(tmp_path, {APP: "a\n  b\nc\n"})
    patch = "--- a/src/App.tsx\n+++ b/src/App.tsx\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n"
    result = apply_patch(tmp_path, patch)
    assert result["failures"][0]["reason"] == codes.DELETION_MISMATCH


def test_context_mismatch_reason(tmp_path: Path) -> None:
    make_workspace(tmp_path, {APP: "a\nb\nc\n"})
    patch = "--- a/src/App.tsx\n+++ b/src/App.tsx\n@@ -1,3 +1,3 @@\n zzz\n-b\n+B\n c\n"
    failure = apply_patch(tmp_path, patch)["failures"][0]
    assert failure["reason"] == codes.CONTEXT_MISMATCH


def test_invalid_hunk_offset_beyond_end_of_file(tmp_path: Path) -> None:
    make_workspace(tmp_path, {APP: "a\nb\n"})
    patch = "--- a/src/App.tsx\n+++ b/src/App.tsx\n@@ -50,2 +50,2 @@\n-q\n+r\n s\n"
    failure = apply_patch(tmp_path, patch)["failures"][0]
    assert failure["reason"] == codes.INVALID_HUNK_OFFSET
    assert failure["recommended_refresh"] == {"start_line": 38, "end_line": 64}


# ---- Begin Patch improvements: Move to, End of File, anchors ------------------------------


def test_begin_patch_move_to(tmp_path: Path) -> None:
    make_workspace(tmp_path, {"src/old.ts": "export const a = 1;\n"})
    patch = (
        "*** Begin Patch\n*** Update File: src/old.ts\n*** Move to: src/new.ts\n"
        "@@\n-export const a = 1;\n+export const a = 2;\n*** End Patch\n"
    )
    result = apply_patch(tmp_path, patch)
    assert result["code"] == codes.PATCH_APPLIED
    assert result["applied_files"] == ["src/new.ts", "src/old.ts"]
    assert not (tmp_path / "src/old.ts").exists()
    assert read(tmp_path, "src/new.ts") == "export const a = 2;\n"


def test_begin_patch_move_to_existing_target_fails(tmp_path: Path) -> None:
    make_workspace(tmp_path, {"src/old.ts": "a\n", "src/new.ts": "b\n"})
    patch = "*** Begin Patch\n*** Update File: src/old.ts\n*** Move to: src/new.ts\n*** End Patch"
    result = apply_patch(tmp_path, patch)
    assert result["failures"][0]["reason"] == codes.TARGET_EXISTS
    assert read(tmp_path, "src/old.ts") == "a\n"


def test_begin_patch_end_of_file(tmp_path: Path) -> None:
    make_workspace(tmp_path, {APP: "return;\nmiddle\nreturn;\n"})
    patch = (
        "*** Begin Patch\n*** Update File: src/App.tsx\n@@\n-return;\n+return 1;\n"
        "*** End of File\n*** End Patch\n"
    )
    assert apply_patch(tmp_path, patch)["ok"]
    assert read(tmp_path, APP) == "return;\nmiddle\nreturn 1;\n"


def test_begin_patch_end_of_file_must_match_the_end(tmp_path: Path) -> None:
    make_workspace(tmp_path, {APP: "target\nlast\n"})
    patch = (
        "*** Begin Patch\n*** Update File: src/App.tsx\n@@\n-target\n+x\n"
        "*** End of File\n*** End Patch\n"
    )
    result = apply_patch(tmp_path, patch)
    assert result["failures"][0]["reason"] == codes.DELETION_MISMATCH


def test_begin_patch_anchor_selects_the_segment(tmp_path: Path) -> None:
    body = "function first() {\n  return 0;\n}\nfunction second() {\n  return 0;\n}\n"
    make_workspace(tmp_path, {APP: body})
    patch = (
        "*** Begin Patch\n*** Update File: src/App.tsx\n@@ function second() {\n"
        "-  return 0;\n+  return 2;\n*** End Patch\n"
    )
    assert apply_patch(tmp_path, patch)["ok"]
    assert read(tmp_path, APP) == (
        "function first() {\n  return 0;\n}\nfunction second() {\n  return 2;\n}\n"
    )


def test_begin_patch_nested_anchors(tmp_path: Path) -> None:
    body = "class A {\n  run() {\n    go();\n  }\n}\nclass B {\n  run() {\n    go();\n  }\n}\n"
    make_workspace(tmp_path, {APP: body})
    patch = (
        "*** Begin Patch\n*** Update File: src/App.tsx\n@@ class B {\n@@ run() {\n"
        "-    go();\n+    stop();\n*** End Patch\n"
    )
    assert apply_patch(tmp_path, patch)["ok"]
    text = read(tmp_path, APP)
    assert text.index("stop();") > text.index("class B")
    assert text.count("go();") == 1


def test_begin_patch_unknown_anchor_is_ignored(tmp_path: Path) -> None:
    make_workspace(tmp_path, {APP: "a\nb\n"})
    patch = "*** Begin Patch\n*** Update File: src/App.tsx\n@@ nowhere\n-b\n+B\n*** End Patch\n"
    assert apply_patch(tmp_path, patch)["ok"]
    assert read(tmp_path, APP) == "a\nB\n"


def test_begin_patch_anchor_with_pure_addition(tmp_path: Path) -> None:
    make_workspace(tmp_path, {APP: "import a;\nbody;\n"})
    patch = "*** Begin Patch\n*** Update File: src/App.tsx\n@@ import a;\n+import b;\n*** End Patch"
    assert apply_patch(tmp_path, patch)["ok"]
    assert read(tmp_path, APP) == "import a;\nimport b;\nbody;\n"


def test_begin_patch_segments_apply_in_order(tmp_path: Path) -> None:
    make_workspace(tmp_path, {APP: "x\ny\nx\ny\n"})
    patch = (
        "*** Begin Patch\n*** Update File: src/App.tsx\n@@\n x\n-y\n+Y1\n"
        "@@\n x\n-y\n+Y2\n*** End Patch\n"
    )
    assert apply_patch(tmp_path, patch)["ok"]
    assert read(tmp_path, APP) == "x\nY1\nx\nY2\n"


def test_begin_patch_add_and_delete(tmp_path: Path) -> None:
    make_workspace(tmp_path, {"src/old.ts": "gone\n"})
    patch = (
        "*** Begin Patch\n*** Add File: src/new.ts\n+line one\n\n+line three\n"
        "*** Delete File: src/old.ts\n*** Delete File: src/missing.ts\n*** End Patch\n"
    )
    result = apply_patch(tmp_path, patch)
    assert result["code"] == codes.PATCH_APPLIED
    assert result["applied_files"] == ["src/new.ts", "src/old.ts"]
    assert read(tmp_path, "src/new.ts") == "line one\n\nline three\n"
    assert not (tmp_path / "src/old.ts").exists()


def test_begin_patch_add_existing_file_fails(tmp_path: Path) -> None:
    make_workspace(tmp_path, {APP: "x\n"})
    patch = "*** Begin Patch\n*** Add File: src/App.tsx\n+y\n*** End Patch\n"
    result = apply_patch(tmp_path, patch)
    assert result["failures"][0]["reason"] == codes.TARGET_EXISTS
    assert read(tmp_path, APP) == "x\n"


def test_begin_patch_add_with_unprefixed_line_fails(tmp_path: Path) -> None:
    patch = "*** Begin Patch\n*** Add File: src/new.ts\n+ok\nnot prefixed\n*** End Patch\n"
    result = apply_patch(tmp_path, patch)
    assert result["code"] == codes.PATCH_HUNK_MISMATCH
    assert result["failures"][0]["reason"] == codes.INVALID_ADD_FILE_PATCH
    assert not (tmp_path / "src/new.ts").exists()


def test_begin_patch_unknown_line_fails(tmp_path: Path) -> None:
    make_workspace(tmp_path, {APP: "a\n"})
    patch = "*** Begin Patch\n*** Update File: src/App.tsx\n@@\n-a\n+b\n*** Frobnicate\n"
    result = apply_patch(tmp_path, patch)
    assert result["failures"][0]["reason"] == codes.UNSUPPORTED_BEGIN_PATCH_LINE
    assert read(tmp_path, APP) == "a\n"


def test_begin_patch_segment_not_found(tmp_path: Path) -> None:
    make_workspace(tmp_path, {APP: "a\nb\n"})
    patch = "*** Begin Patch\n*** Update File: src/App.tsx\n@@\n a\n-zzz\n+y\n*** End Patch\n"
    failure = apply_patch(tmp_path, patch)["failures"][0]
    assert failure["reason"] == codes.CONTEXT_MISMATCH
    assert failure["hunk_index"] == 1


# ---- unified create / delete / rename ------------------------------------------------------


def test_unified_create_from_dev_null(tmp_path: Path) -> None:
    patch = "--- /dev/null\n+++ b/src/new.ts\n@@ -0,0 +1,2 @@\n+one\n+two\n"
    result = apply_patch(tmp_path, patch)
    assert result["applied_files"] == ["src/new.ts"]
    assert read(tmp_path, "src/new.ts") == "one\ntwo\n"


def test_unified_create_existing_target_fails(tmp_path: Path) -> None:
    make_workspace(tmp_path, {"src/new.ts": "x\n"})
    patch = "--- /dev/null\n+++ b/src/new.ts\n@@ -0,0 +1 @@\n+one\n"
    result = apply_patch(tmp_path, patch)
    assert result["failures"][0]["reason"] == codes.TARGET_EXISTS
    assert result["failures"][0]["recommended_refresh"] == {"start_line": 1, "end_line": 120}


def test_create_not_allowed(tmp_path: Path) -> None:
    patch = "--- /dev/null\n+++ b/src/new.ts\n@@ -0,0 +1 @@\n+one\n"
    result = apply_patch(tmp_path, patch, allow_create=False)
    assert result["failures"][0]["reason"] == codes.CREATE_NOT_ALLOWED
    assert not (tmp_path / "src/new.ts").exists()


def test_git_new_empty_file_without_hunks(tmp_path: Path) -> None:
    patch = (
        "diff --git a/src/empty.ts b/src/empty.ts\nnew file mode 100644\nindex 0000000..e69de29\n"
    )
    result = apply_patch(tmp_path, patch)
    assert result["applied_files"] == ["src/empty.ts"]
    assert read(tmp_path, "src/empty.ts") == ""


def test_unified_delete(tmp_path: Path) -> None:
    make_workspace(tmp_path, {"src/old.ts": "a\nb\n"})
    patch = (
        "diff --git a/src/old.ts b/src/old.ts\ndeleted file mode 100644\n"
        "--- a/src/old.ts\n+++ /dev/null\n@@ -1,2 +0,0 @@\n-a\n-b\n"
    )
    result = apply_patch(tmp_path, patch)
    assert result["applied_files"] == ["src/old.ts"]
    assert not (tmp_path / "src/old.ts").exists()


def test_unified_delete_must_match_content(tmp_path: Path) -> None:
    make_workspace(tmp_path, {"src/old.ts": "a\nb\n"})
    patch = "--- a/src/old.ts\n+++ /dev/null\n@@ -1,2 +0,0 @@\n-a\n-changed\n"
    result = apply_patch(tmp_path, patch)
    assert result["failures"][0]["reason"] == codes.DELETION_MISMATCH
    assert (tmp_path / "src/old.ts").exists()


def test_unified_delete_missing_file(tmp_path: Path) -> None:
    patch = "--- a/src/old.ts\n+++ /dev/null\n@@ -1 +0,0 @@\n-a\n"
    assert apply_patch(tmp_path, patch)["failures"][0]["reason"] == codes.FILE_MISSING


def test_delete_not_allowed(tmp_path: Path) -> None:
    make_workspace(tmp_path, {"src/old.ts": "a\n"})
    patch = "--- a/src/old.ts\n+++ /dev/null\n@@ -1 +0,0 @@\n-a\n"
    result = apply_patch(tmp_path, patch, allow_delete=False)
    assert result["failures"][0]["reason"] == codes.DELETE_NOT_ALLOWED
    assert (tmp_path / "src/old.ts").exists()


def test_update_missing_file(tmp_path: Path) -> None:
    patch = "--- a/src/nope.ts\n+++ b/src/nope.ts\n@@ -1 +1 @@\n-a\n+b\n"
    failure = apply_patch(tmp_path, patch)["failures"][0]
    assert failure["reason"] == codes.FILE_MISSING
    assert failure["hunk_index"] == 0


def test_git_rename_with_hunk(tmp_path: Path) -> None:
    make_workspace(tmp_path, {"src/old.ts": "a\nb\nc\n"})
    patch = (
        "diff --git a/src/old.ts b/src/new.ts\nsimilarity index 80%\n"
        "rename from src/old.ts\nrename to src/new.ts\n"
        "--- a/src/old.ts\n+++ b/src/new.ts\n@@ -2 +2 @@\n-b\n+B\n"
    )
    result = apply_patch(tmp_path, patch)
    assert result["applied_files"] == ["src/new.ts", "src/old.ts"]
    assert read(tmp_path, "src/new.ts") == "a\nB\nc\n"
    assert not (tmp_path / "src/old.ts").exists()


def test_git_pure_rename(tmp_path: Path) -> None:
    make_workspace(tmp_path, {"src/old.ts": "a\n"})
    patch = (
        "diff --git a/src/old.ts b/src/new.ts\nsimilarity index 100%\n"
        "rename from src/old.ts\nrename to src/new.ts\n"
    )
    assert apply_patch(tmp_path, patch)["ok"]
    assert read(tmp_path, "src/new.ts") == "a\n"


def test_rename_needs_create_and_delete_permission(tmp_path: Path) -> None:
    make_workspace(tmp_path, {"src/old.ts": "a\n"})
    patch = "diff --git a/src/old.ts b/src/new.ts\nrename from src/old.ts\nrename to src/new.ts\n"
    result = apply_patch(tmp_path, patch, allow_delete=False)
    assert result["failures"][0]["reason"] == codes.DELETE_NOT_ALLOWED
    assert (tmp_path / "src/old.ts").exists()


# ---- header and body details ---------------------------------------------------------------


def test_header_tab_suffix_and_quotes(tmp_path: Path) -> None:
    make_workspace(tmp_path, {"src/my file.ts": "a\n"})
    patch = (
        '--- "a/src/my file.ts"\t2024-01-01 00:00:00\n'
        "+++ b/src/my file.ts\t2024-01-02 00:00:00\n"
        "@@ -1 +1 @@\n-a\n+b\n"
    )
    assert apply_patch(tmp_path, patch)["applied_files"] == ["src/my file.ts"]


def test_empty_line_in_hunk_is_blank_context(tmp_path: Path) -> None:
    make_workspace(tmp_path, {APP: "a\n\nb\n"})
    patch = "--- a/src/App.tsx\n+++ b/src/App.tsx\n@@ -1,3 +1,3 @@\n a\n\n-b\n+B\n"
    assert apply_patch(tmp_path, patch)["ok"]
    assert read(tmp_path, APP) == "a\n\nB\n"


def test_removed_line_that_looks_like_a_header(tmp_path: Path) -> None:
    make_workspace(tmp_path, {"src/x.md": "-- a\n++ b\nc\n"})
    patch = "--- a/src/x.md\n+++ b/src/x.md\n@@ -1,3 +1,1 @@\n--- a\n-++ b\n c\n"
    assert apply_patch(tmp_path, patch)["ok"]
    assert read(tmp_path, "src/x.md") == "c\n"


def test_hunk_counts_default_to_one(tmp_path: Path) -> None:
    make_workspace(tmp_path, {APP: "a\nb\n"})
    patch = "--- a/src/App.tsx\n+++ b/src/App.tsx\n@@ -2 +2 @@\n-b\n+B\n"
    assert apply_patch(tmp_path, patch)["ok"]


def test_body_longer_than_counts_is_reported(tmp_path: Path) -> None:
    make_workspace(tmp_path, {APP: "a\nb\nc\n"})
    patch = "--- a/src/App.tsx\n+++ b/src/App.tsx\n@@ -1 +1 @@\n-a\n+A\n-b\n+B\n"
    result = apply_patch(tmp_path, patch)
    assert result["failures"][0]["reason"] == codes.UNSUPPORTED_HUNK_LINE
    assert read(tmp_path, APP) == "a\nb\nc\n"


def test_body_shorter_than_counts_is_tolerated(tmp_path: Path) -> None:
    make_workspace(tmp_path, {APP: "a\nb\nc\n"})
    patch = "--- a/src/App.tsx\n+++ b/src/App.tsx\n@@ -1,5 +1,5 @@\n a\n-b\n+B\n\n"
    assert apply_patch(tmp_path, patch)["ok"]
    assert read(tmp_path, APP) == "a\nB\nc\n"


def test_malformed_hunk_header(tmp_path: Path) -> None:
    make_workspace(tmp_path, {APP: "a\n"})
    patch = "--- a/src/App.tsx\n+++ b/src/App.tsx\n@@ -x +y @@\n-a\n+b\n"
    result = apply_patch(tmp_path, patch)
    assert result["failures"][0]["reason"] == codes.UNSUPPORTED_HUNK_LINE


def test_prose_and_fences_around_a_diff_are_ignored(tmp_path: Path) -> None:
    make_workspace(tmp_path, {APP: "a\n"})
    patch = (
        "Here is the fix:\n```diff\n"
        "--- a/src/App.tsx\n+++ b/src/App.tsx\n@@ -1 +1 @@\n-a\n+b\n```\n"
    )
    assert apply_patch(tmp_path, patch)["ok"]


def test_several_sections_for_one_file_apply_in_sequence(tmp_path: Path) -> None:
    make_workspace(tmp_path, {APP: "a\nb\n"})
    patch = (
        "--- a/src/App.tsx\n+++ b/src/App.tsx\n@@ -1 +1 @@\n-a\n+A\n"
        "--- a/src/App.tsx\n+++ b/src/App.tsx\n@@ -2 +2 @@\n-b\n+B\n"
    )
    result = apply_patch(tmp_path, patch)
    assert result["applied_files"] == [APP]
    assert read(tmp_path, APP) == "A\nB\n"


def test_crlf_file_keeps_crlf(tmp_path: Path) -> None:
    make_workspace(tmp_path, {APP: b"a\r\nb\r\nc\r\n"})
    patch = "--- a/src/App.tsx\n+++ b/src/App.tsx\n@@ -1,3 +1,4 @@\n a\n-b\n+B\n+B2\n c\n"
    assert apply_patch(tmp_path, patch)["ok"]
    assert (tmp_path / APP).read_bytes() == b"a\r\nB\r\nB2\r\nc\r\n"


def test_crlf_patch_applies_to_lf_file(tmp_path: Path) -> None:
    make_workspace(tmp_path, {APP: "a\nb\n"})
    patch = "--- a/src/App.tsx\r\n+++ b/src/App.tsx\r\n@@ -1,2 +1,2 @@\r\n a\r\n-b\r\n+B\r\n"
    assert apply_patch(tmp_path, patch)["ok"]
    assert (tmp_path / APP).read_bytes() == b"a\nB\n"


def test_non_utf8_bytes_survive(tmp_path: Path) -> None:
    make_workspace(tmp_path, {APP: b"caf\xe9\nb\n"})
    patch = "--- a/src/App.tsx\n+++ b/src/App.tsx\n@@ -2 +2 @@\n-b\n+B\n"
    assert apply_patch(tmp_path, patch)["ok"]
    assert (tmp_path / APP).read_bytes() == b"caf\xe9\nB\n"


def test_file_mode_is_kept(tmp_path: Path) -> None:
    make_workspace(tmp_path, {APP: "a\n"})
    os.chmod(tmp_path / APP, 0o755)
    apply_patch(tmp_path, "--- a/src/App.tsx\n+++ b/src/App.tsx\n@@ -1 +1 @@\n-a\n+b\n")
    assert (tmp_path / APP).stat().st_mode & 0o777 == 0o755


# ---- atomicity ---------------------------------------------------------------------------

TWO_FILES = (
    "--- a/src/good.ts\n+++ b/src/good.ts\n@@ -1 +1 @@\n-good\n+better\n"
    "--- a/src/bad.ts\n+++ b/src/bad.ts\n@@ -1 +1 @@\n-not there\n+x\n"
)


def test_atomic_failure_writes_nothing(tmp_path: Path) -> None:
    make_workspace(tmp_path, {"src/good.ts": "good\n", "src/bad.ts": "bad\n"})
    result = apply_patch(tmp_path, TWO_FILES)
    assert result["code"] == codes.PATCH_HUNK_MISMATCH
    assert read(tmp_path, "src/good.ts") == "good\n"


def test_non_atomic_partial_apply(tmp_path: Path) -> None:
    make_workspace(tmp_path, {"src/good.ts": "good\n", "src/bad.ts": "bad\n"})
    result = apply_patch(tmp_path, TWO_FILES, atomic=False)
    assert result["ok"] is False
    assert result["code"] == codes.PATCH_PARTIAL_APPLY
    assert result["applied_files"] == ["src/good.ts"]
    assert [f["path"] for f in result["failures"]] == ["src/bad.ts"]
    assert result["metrics"]["applied_file_count"] == 1
    assert result["metrics"]["failure_count"] == 1
    assert read(tmp_path, "src/good.ts") == "better\n"
    assert read(tmp_path, "src/bad.ts") == "bad\n"


def test_non_atomic_with_nothing_applicable(tmp_path: Path) -> None:
    make_workspace(tmp_path, {"src/bad.ts": "bad\n"})
    patch = "--- a/src/bad.ts\n+++ b/src/bad.ts\n@@ -1 +1 @@\n-not there\n+x\n"
    assert apply_patch(tmp_path, patch, atomic=False)["code"] == codes.PATCH_HUNK_MISMATCH


def test_write_failure_rolls_back_written_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_workspace(tmp_path, {"src/a.ts": "a\n", "src/b.ts": "b\n"})
    patch = (
        "--- a/src/a.ts\n+++ b/src/a.ts\n@@ -1 +1 @@\n-a\n+A\n"
        "--- a/src/b.ts\n+++ b/src/b.ts\n@@ -1 +1 @@\n-b\n+B\n"
    )
    real_replace = os.replace
    calls = {"n": 0}

    def failing_second_replace(src: str, dst: str) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_second_replace)
    with pytest.raises(OSError, match="disk full"):
        apply_patch(tmp_path, patch)
    monkeypatch.undo()
    assert read(tmp_path, "src/a.ts") == "a\n"
    assert read(tmp_path, "src/b.ts") == "b\n"
    assert sorted(p.name for p in (tmp_path / "src").iterdir()) == ["a.ts", "b.ts"]


# ---- whole-patch rejections ----------------------------------------------------------------


@pytest.mark.parametrize(
    "patch",
    [
        "diff --git a/logo.png b/logo.png\nindex 1..2 100644\nGIT binary patch\nliteral 5\nabc\n",
        "diff --git a/logo.png b/logo.png\nBinary files a/logo.png and b/logo.png differ\n",
    ],
)
def test_binary_patch_not_supported(tmp_path: Path, patch: str) -> None:
    result = apply_patch(tmp_path, patch)
    assert result["code"] == codes.PATCH_BINARY_NOT_SUPPORTED
    assert result["ok"] is False


def test_too_large(tmp_path: Path) -> None:
    make_workspace(tmp_path, {APP: "a\n"})
    patch = "--- a/src/App.tsx\n+++ b/src/App.tsx\n@@ -1 +1 @@\n-a\n+" + "b" * 500 + "\n"
    result = apply_patch(tmp_path, patch, max_patch_bytes=100)
    assert result["code"] == codes.PATCH_TOO_LARGE
    assert result["metrics"]["patch_bytes"] == len(patch)
    assert read(tmp_path, APP) == "a\n"


@pytest.mark.parametrize(
    "patch",
    ["just some words", "", "@@ -1 +1 @@\n-a\n+b\n", "*** Begin Patch\n*** End Patch\n"],
)
def test_parse_failed(tmp_path: Path, patch: str) -> None:
    result = apply_patch(tmp_path, patch)
    assert result["code"] == codes.PATCH_PARSE_FAILED
    assert result["summary"] == "No unified diff hunks were detected"


# ---- envelopes and numbered reads ----------------------------------------------------------


def test_failure_envelope_has_refresh_windows(tmp_path: Path) -> None:
    make_workspace(tmp_path, {APP: numbered(40)})
    patch = "--- a/src/App.tsx\n+++ b/src/App.tsx\n@@ -20 +20 @@\n-nope\n+x\n"
    result = apply_patch(tmp_path, patch)
    envelope = tool_envelope(result, tmp_path, 12_000)
    assert envelope["error"] == result["summary"]
    assert envelope["code"] == codes.PATCH_HUNK_MISMATCH
    assert envelope["result"] is result
    assert envelope["failures"] == result["failures"]
    (window,) = envelope["refresh_windows"]
    assert window["path"] == APP
    assert (window["start_line"], window["end_line"]) == (8, 33)
    assert window["content"].splitlines()[0] == "8: line 8"
    assert window["line_count"] == 26


def test_refresh_windows_limited_to_four_and_byte_capped(tmp_path: Path) -> None:
    files = {f"src/f{n}.ts": numbered(50, "x" * 200) for n in range(6)}
    make_workspace(tmp_path, files)
    patch = "".join(
        f"--- a/src/f{n}.ts\n+++ b/src/f{n}.ts\n@@ -10 +10 @@\n-nope\n+y\n" for n in range(6)
    )
    result = apply_patch(tmp_path, patch)
    assert len(result["failures"]) == 6
    envelope = tool_envelope(result, tmp_path, 50_000)
    windows = envelope["refresh_windows"]
    assert [w["path"] for w in windows] == [f"src/f{n}.ts" for n in range(4)]
    assert all(len(w["content"].encode()) <= 16_000 for w in windows)
    small = tool_envelope(result, tmp_path, 300)["refresh_windows"]
    assert all(w["truncated"] and len(w["content"].encode()) <= 300 for w in small)


def test_unreadable_refresh_windows_are_skipped(tmp_path: Path) -> None:
    result = apply_patch(tmp_path, "--- a/src/x.ts\n+++ b/src/x.ts\n@@ -1 +1 @@\n-a\n+b\n")
    assert tool_envelope(result, tmp_path)["refresh_windows"] == []


def test_success_envelope_has_verification_plan(tmp_path: Path) -> None:
    make_workspace(tmp_path, {APP: "a\n", "src/app.css": "a\n"})
    patch = (
        "--- a/src/App.tsx\n+++ b/src/App.tsx\n@@ -1 +1 @@\n-a\n+b\n"
        "--- a/src/app.css\n+++ b/src/app.css\n@@ -1 +1 @@\n-a\n+b\n"
    )
    envelope = tool_envelope(apply_patch(tmp_path, patch), tmp_path)
    assert envelope["ok"] is True
    assert envelope["verification_plan"] == {
        "changed_paths": ["src/App.tsx", "src/app.css"],
        "recommended_commands": [
            "npm run typecheck",
            "npm run test -- --run --passWithNoTests",
            "npm run build",
        ],
    }


def test_verification_plan_rules() -> None:
    assert verification_plan(["a.py"])["recommended_commands"] == ["pytest -q"]
    assert verification_plan(["a.md"])["recommended_commands"] == []
    assert verification_plan(["x.ts"])["recommended_commands"] == [
        "npm run typecheck",
        "npm run test -- --run --passWithNoTests",
    ]
    many = [f"src/f{n}.ts" for n in range(50)]
    assert len(verification_plan(many)["changed_paths"]) == 40


def test_partial_envelope_is_a_failure_with_plan(tmp_path: Path) -> None:
    make_workspace(tmp_path, {"src/good.ts": "good\n", "src/bad.ts": "bad\n"})
    envelope = tool_envelope(apply_patch(tmp_path, TWO_FILES, atomic=False), tmp_path)
    assert envelope["code"] == codes.PATCH_PARTIAL_APPLY
    assert envelope["verification_plan"]["changed_paths"] == ["src/good.ts"]


# ---- make_unified_diff and property tests --------------------------------------------------


def test_make_unified_diff_create_and_delete(tmp_path: Path) -> None:
    create = make_unified_diff("src/new.ts", None, "hello\nworld")
    assert create.startswith("--- /dev/null\n+++ b/src/new.ts\n")
    assert apply_patch(tmp_path, create)["ok"]
    assert read(tmp_path, "src/new.ts") == "hello\nworld"
    delete = make_unified_diff("src/new.ts", "hello\nworld", None)
    assert apply_patch(tmp_path, delete)["ok"]
    assert not (tmp_path / "src/new.ts").exists()


def test_make_unified_diff_of_equal_texts_is_empty() -> None:
    assert make_unified_diff("a.ts", "x\n", "x\n") == ""


ALPHABET = ["a", "b", "c", "", "  indented", "-- dash", "++ plus", "@@ at", "\\ slash", "x y"]
texts = st.builds(
    lambda lines, final: "\n".join(lines) + ("\n" if final and lines else ""),
    st.lists(st.sampled_from(ALPHABET), max_size=12),
    st.booleans(),
)


def _roundtrip(old: str, new: str, context: int) -> None:
    patch = make_unified_diff("src/f.ts", old, new, context=context)
    with tempfile.TemporaryDirectory() as directory:
        root = make_workspace(Path(directory), {"src/f.ts": old})
        if not patch:
            assert old == new
            return
        result = apply_patch(root, patch)
        assert result["code"] == codes.PATCH_APPLIED, (patch, result)
        assert result["hunk_offsets"] == []
        assert (root / "src/f.ts").read_bytes() == new.encode()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(old=texts, new=texts)
def test_diff_roundtrip(old: str, new: str) -> None:
    _roundtrip(old, new, context=3)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(old=texts, new=texts)
def test_diff_roundtrip_without_context(old: str, new: str) -> None:
    _roundtrip(old, new, context=0)


def test_update_of_missing_file_with_only_additions_creates_it(tmp_path: Path) -> None:
    patch = "--- a/src/new.ts\n+++ b/src/new.ts\n@@ -0,0 +1,2 @@\n+one\n+two\n"
    result = apply_patch(tmp_path, patch)
    assert result["applied_files"] == ["src/new.ts"]
    assert read(tmp_path, "src/new.ts") == "one\ntwo\n"
    assert (
        apply_patch(tmp_path / "other", patch, allow_create=False)["failures"][0]["reason"]
        == codes.CREATE_NOT_ALLOWED
    )


def test_begin_patch_with_header_like_body_lines(tmp_path: Path) -> None:
    make_workspace(tmp_path, {"src/x.md": "-- old\nkeep\n"})
    patch = (
        "*** Begin Patch\n*** Update File: src/x.md\n@@\n--- old\n+++ new\n keep\n"
        "@@\n keep\n+tail\n*** End Patch\n"
    )
    assert apply_patch(tmp_path, patch)["ok"]
    assert read(tmp_path, "src/x.md") == "++ new\nkeep\ntail\n"


def test_precondition_path_under_policy(tmp_path: Path) -> None:
    result = apply_patch(tmp_path, "x", expected_hashes={"../etc/passwd": "00"})
    assert result["code"] == codes.PATCH_POLICY_VIOLATION
    assert result["failures"][0]["path"] == "../etc/passwd"
