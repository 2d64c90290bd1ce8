"""What an unattended OpenCode session may do (docs/design.md section 7: paths never leave the
workspace).

Two layers: the ruleset sent with ``POST /session`` makes OpenCode ask before every edit and
deny what has no place in a hosted run (web access, sub-agents, questions to a user, paths
outside the directory); :func:`permission_reply` answers each ``permission.asked``: an edit
of a file inside the run's workspace is allowed once, anything else is rejected, so no
request is ever left hanging.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Literal

Reply = Literal["once", "reject"]

PROJECT_CONFIG = (".opencode", "opencode.json", "opencode.jsonc")
"""Workspace entries OpenCode would read as its own configuration and plugins (code it
runs in the server process): never the model's to write."""


def scrub_project_config(workspace: Path) -> list[str]:
    """Remove :data:`PROJECT_CONFIG` entries from the workspace root before a session
    (blocking; symlinks are removed, never followed). Returns the names removed."""
    removed = []
    for name in PROJECT_CONFIG:
        path = workspace / name
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.is_dir():
            shutil.rmtree(path)
        else:
            continue
        removed.append(name)
    return removed


def session_rules(
    *, bash: Literal["allow", "deny"], ask_bash: bool = False
) -> list[dict[str, str]]:
    """The session's permission ruleset (``[{permission, pattern, action}]``; last match
    wins in OpenCode). ``ask_bash``: an allowed bash asks first (the run's approval policy
    wants a person to decide its commands); a denied bash stays denied."""
    denied = ("webfetch", "websearch", "codesearch", "task", "question", "external_directory")
    rules = [{"permission": "edit", "pattern": "*", "action": "ask"}]
    action = "ask" if bash == "allow" and ask_bash else bash
    rules.append({"permission": "bash", "pattern": "*", "action": action})
    rules += [{"permission": name, "pattern": "*", "action": "deny"} for name in denied]
    return rules


def permission_reply(request: dict[str, Any], workspace: Path) -> Reply:
    """Decide one ``permission.asked`` request (blocking: resolves paths on disk).

    Args:
        request: the event's properties, e.g. ``{"id": "per_…", "permission": "edit",
            "patterns": [...], "metadata": {"filepath": "/abs/file", ...}}``.
        workspace: the run's workspace directory.

    Returns:
        ``"once"`` for an edit whose ``metadata.filepath`` resolves inside ``workspace``,
        else ``"reject"``.
    """
    if request.get("permission") != "edit":
        return "reject"
    filepath = (request.get("metadata") or {}).get("filepath")
    if not isinstance(filepath, str) or not filepath:
        return "reject"
    root = workspace.resolve()
    target = Path(filepath)
    if not target.is_absolute():
        target = root / target
    try:
        relative = target.resolve().relative_to(root)
    except ValueError:
        return "reject"
    if relative.parts and relative.parts[0] in PROJECT_CONFIG:
        return "reject"  # OpenCode's own config and plugins (code in the server)
    return "once"
