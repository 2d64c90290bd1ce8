"""Server paths never reach what a tenant reads (issue 9 item 5): errors that carry OSError
text keep the workspace-relative path only (runtime.redact)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from runtime.redact import HIDDEN, Redactor, for_settings
from runtime.settings import load_settings
from runtime.tools import Toolpack
from runtime.workspace import Workspace
from tests.unit.toolpack_fixtures import make_context


def _os_error_text(path: Path) -> str:
    """The text of a real OSError naming ``path`` (what run and tool errors carry)."""
    try:
        path.read_text()
    except OSError as exc:
        return str(exc)
    raise AssertionError(f"{path} exists")


def test_workspace_paths_become_relative(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "data")
    root = settings.runs_dir / str(uuid.uuid4()) / str(uuid.uuid4())
    (root / "src").mkdir(parents=True)
    text = _os_error_text(root / "src" / "gone.ts")
    assert str(root) in text
    shown = for_settings(settings.runs_dir, settings.data_dir).text(text)
    assert shown == "[Errno 2] No such file or directory: 'src/gone.ts'"


def test_other_server_paths_are_hidden(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "data")
    redactor = for_settings(settings.runs_dir, settings.data_dir)
    text = _os_error_text(settings.data_dir / "jwt_secret")
    assert redactor.text(text) == f"[Errno 2] No such file or directory: '{HIDDEN}'"
    home = Path.home()
    assert redactor.text(f"cannot read {home}/.npmrc: denied") == f"cannot read {HIDDEN}: denied"
    # The workspace directory itself, and lookalike or URL paths, are handled precisely.
    ws = settings.runs_dir / "a" / "b"
    assert redactor.text(f"cwd {ws} gone") == "cwd . gone"
    assert redactor.text(f"see {settings.data_dir}x/y") == f"see {settings.data_dir}x/y"
    assert (
        redactor.text(f"http://host{settings.data_dir}/v1") == f"http://host{settings.data_dir}/v1"
    )


def test_symlinked_spelling_is_redacted_too(tmp_path: Path) -> None:
    real = tmp_path / "real"
    (real / "workspaces").mkdir(parents=True)
    link = tmp_path / "link"
    link.symlink_to(real)
    redactor = Redactor(link / "workspaces", [link])
    assert redactor.text(f"'{real}/workspaces/a/b/src/x.ts'") == "'src/x.ts'"
    assert redactor.text(f"'{real}/other'") == f"'{HIDDEN}'"


@pytest.mark.parametrize(
    ("tool", "args"),
    [
        ("coding_agent_rename_file", {"from_path": "src/b.ts", "to_path": "src/App.tsx/y.ts"}),
        (
            "coding_agent_apply_patch",
            {"patch": "--- /dev/null\n+++ b/src/App.tsx/n.ts\n@@ -0,0 +1 @@\n+export {}\n"},
        ),
    ],
)
async def test_tool_os_error_names_only_workspace_paths(
    tmp_path: Path, tool: str, args: dict
) -> None:
    """A real OSError (a file where a directory must go) reaches the envelope with the
    workspace-relative path only."""
    settings = load_settings(data_dir=tmp_path / "data")
    workspace = Workspace(settings.runs_dir / "run" / str(uuid.uuid4()))
    workspace.materialise({"src/App.tsx": "x\n", "src/b.ts": "y\n"})
    out = await Toolpack(settings).call(tool, args, make_context(workspace))
    assert "[Errno" in str(out) and "'src/App.tsx'" in str(out), out
    assert str(tmp_path) not in str(out)
