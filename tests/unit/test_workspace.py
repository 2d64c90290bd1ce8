"""runtime.workspace: materialise, snapshot, path safety and the revision token."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runtime.paths import PathPolicyError
from runtime.workspace import Workspace, WorkspaceFileExists, WorkspaceFileNotFound
from tests.unit import toolpack_fixtures as fx

settings = fx.settings
workspace = fx.workspace  # pytest fixtures used by name


def test_materialise_replaces_contents_exactly(workspace: Workspace) -> None:
    root = workspace.root
    (root / "stale.ts").write_text("old")
    (root / "dist").mkdir()
    (root / "dist" / "bundle.js").write_text("x")
    (root / "node_modules" / "react").mkdir(parents=True)
    (root / "node_modules" / "react" / "index.js").write_text("kept")
    changed = workspace.materialise({"src/App.tsx": "a\n", "./index.html": "<html/>"})
    assert changed
    assert workspace.list_files() == ["index.html", "src/App.tsx"]
    assert not (root / "dist").exists()
    assert (root / "node_modules" / "react" / "index.js").read_text() == "kept"
    assert workspace.snapshot() == {"index.html": "<html/>", "src/App.tsx": "a\n"}


def test_materialise_validates_every_path_before_touching_disk(workspace: Workspace) -> None:
    workspace.materialise({"a.ts": "1"})
    with pytest.raises(PathPolicyError):
        workspace.materialise({"b.ts": "2", "../evil.ts": "x"})
    assert workspace.snapshot() == {"a.ts": "1"}


def test_revision_token_bumps_only_on_change_and_is_shared(workspace: Workspace) -> None:
    assert workspace.revision_token == "sandbox-seq-0"
    workspace.materialise({"a.ts": "1"})
    assert workspace.revision_token == "sandbox-seq-1"
    assert not workspace.materialise({"a.ts": "1"})
    assert workspace.revision_token == "sandbox-seq-1"
    assert workspace.write_text("b.ts", "2") == "sandbox-seq-2"
    assert not workspace.delete("missing.ts")
    assert workspace.delete("b.ts")
    assert workspace.rename("a.ts", "c.ts") == "sandbox-seq-4"
    # A second object on the same directory (another run of the same user) sees the counter.
    assert Workspace(workspace.root).revision_token == "sandbox-seq-4"


def test_snapshot_skips_blocked_dirs_and_binary_files(workspace: Workspace) -> None:
    root = workspace.root
    for rel, data in {
        "src/a.ts": b"ok",
        "logo.png": b"\x89PNG\x00\x01",
        "latin1.txt": "caf\xe9".encode("latin-1"),
        ".git/HEAD": b"ref",
        "node_modules/x/i.js": b"x",
        "packages/p/node_modules/y.js": b"y",
        "src/__pycache__/m.pyc": b"c",
        "dist/out.js": b"d",
    }.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    assert workspace.snapshot() == {"src/a.ts": "ok"}
    assert workspace.list_files() == ["latin1.txt", "logo.png", "src/a.ts"]


def test_changed_since(workspace: Workspace) -> None:
    files = {"src/a.ts": "1", "b.md": "2"}
    workspace.materialise(files)
    assert not workspace.changed_since(files)
    assert not workspace.changed_since({"./src/a.ts": "1", "b.md": "2"})
    workspace.write_text("src/a.ts", "changed")
    assert workspace.changed_since(files)


def test_path_policy_on_reads_and_writes(workspace: Workspace) -> None:
    for bad, message in [
        ("../x.ts", "Path traversal is not allowed"),
        ("/etc/passwd.txt", "Absolute paths are not allowed"),
        ("node_modules/a.js", "File path is blocked by policy: node_modules/"),
        (".env", "Unsupported file extension: (none)"),
    ]:
        with pytest.raises(PathPolicyError, match=message.replace("(", r"\(").replace(")", r"\)")):
            workspace.write_text(bad, "x")
        with pytest.raises(PathPolicyError):
            workspace.read_text(bad)
    with pytest.raises(WorkspaceFileNotFound, match="File not found: src/none.ts"):
        workspace.read_text("src\\none.ts")


def test_symlink_escape_is_refused(workspace: Workspace, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("top secret")
    os.symlink(outside / "secret.txt", workspace.root / "leak.txt")
    os.symlink(outside, workspace.root / "linkdir")
    with pytest.raises(PathPolicyError, match="Path traversal"):
        workspace.read_text("leak.txt")
    with pytest.raises(PathPolicyError, match="Path traversal"):
        workspace.write_text("linkdir/new.txt", "x")
    with pytest.raises(PathPolicyError):
        workspace.delete("leak.txt")
    assert not (outside / "new.txt").exists()
    assert "leak.txt" not in workspace.list_files()
    assert workspace.snapshot() == {}
    # Materialise removes links rather than following them.
    workspace.materialise({"a.ts": "1"})
    assert (outside / "secret.txt").read_text() == "top secret"
    assert sorted(p.name for p in workspace.root.iterdir()) == ["a.ts"]


def test_rename_errors(workspace: Workspace) -> None:
    workspace.materialise({"a.ts": "1", "b.ts": "2"})
    with pytest.raises(WorkspaceFileNotFound):
        workspace.rename("zzz.ts", "c.ts")
    with pytest.raises(WorkspaceFileExists):
        workspace.rename("a.ts", "b.ts")
    with pytest.raises(PathPolicyError, match="extension"):
        workspace.rename("a.ts", "a.exe")


def test_sha256_and_write_keeps_mode(workspace: Workspace) -> None:
    workspace.write_text("a.ts", "hello")
    assert workspace.sha256("a.ts") == (
        "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    )
    assert (workspace.root / "a.ts").stat().st_mode & 0o777 == 0o644
