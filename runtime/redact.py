"""Server paths out of every message a tenant can read (issue 9, item 5).

Errors that carry ``OSError`` text name absolute paths (``[Errno 36] File name too long:
'/srv/runwright/workspaces/<app>/<user>/src/...'``). A tenant may read a run's ``error``, its
``run.failed`` diagnostics and its tool envelopes, so before any of those is stored the text
goes through :class:`Redactor`: a path inside a run workspace becomes workspace-relative
(``src/...``), and any other path under the data directory or the server user's home
becomes ``<server path>``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

HIDDEN = "<server path>"

# The rest of a path token: up to whitespace, a quote or a bracket.
_TAIL = r"[^\s'\"()\[\]{}<>,;:]*"
_SEGMENT = r"[^/\s'\"]+"
# A path starts a token: not in the middle of a word or a URL (``http://host/data``).
_START = r"(?<![\w.~-])"
# What may follow a whole path: its end, a quote, a bracket or punctuation.
_END = r"(?=$|['\"\s)\]},;:])"


class Redactor:
    """Rewrites server paths in free text.

    Args:
        workspaces_dir: the parent of every run workspace, laid out as
            ``<workspaces_dir>/<app id>/<owner>/`` (:attr:`Settings.runs_dir`).
        hidden_roots: directories no path under which may be shown at all (the data
            directory, the server user's home).
    """

    def __init__(self, workspaces_dir: Path, hidden_roots: Iterable[Path] = ()) -> None:
        workspace_forms = _forms(workspaces_dir)
        hidden_forms = sorted(
            {form for root in hidden_roots for form in _forms(root)}, key=len, reverse=True
        )
        workspaces = _START + _alternatives(workspace_forms)
        # <workspaces>/<app>/<owner>/rest -> rest; the workspace itself -> "."
        self._inside = re.compile(rf"{workspaces}/{_SEGMENT}/{_SEGMENT}/(?=[^/\s'\"])")
        self._root = re.compile(rf"{workspaces}/{_SEGMENT}/{_SEGMENT}/?{_END}")
        hidden = _START + _alternatives(hidden_forms)
        self._hidden = re.compile(rf"{hidden}(?:/{_TAIL}|{_END})")

    def text(self, message: str) -> str:
        """``message`` with workspace paths made relative and other server paths hidden.

        Example: ``"No such file: '/data/workspaces/<app>/<user>/src/a.ts'"`` ->
        ``"No such file: 'src/a.ts'"``; ``"/data/jwt_secret"`` -> ``"<server path>"``.
        """
        message = self._inside.sub("", message)
        message = self._root.sub(".", message)
        return self._hidden.sub(HIDDEN, message)


def _alternatives(forms: list[str]) -> str:
    """A group matching any of ``forms`` (longest first); matches nothing when empty."""
    if not forms:
        return "(?!)"
    return "(?:" + "|".join(re.escape(f) for f in forms) + ")"


def _forms(root: Path) -> list[str]:
    """The spellings of ``root`` a message may contain: as configured and resolved."""
    forms = {str(root).rstrip("/")}
    try:
        forms.add(str(root.resolve()).rstrip("/"))
    except (OSError, RuntimeError):
        pass
    return sorted((f for f in forms if f not in ("", "/")), key=len, reverse=True)


def for_settings(workspaces_dir: Path, data_dir: Path) -> Redactor:
    """The server's redactor: workspaces relative; the data directory and home hidden."""
    roots = [data_dir]
    try:
        roots.append(Path.home())
    except RuntimeError:  # no home directory for this user
        pass
    return Redactor(workspaces_dir, roots)
