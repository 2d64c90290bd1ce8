"""Make unified diffs that :func:`runtime.patching.apply_patch` applies exactly."""

from __future__ import annotations

import difflib

NO_NEWLINE_MARKER = "\\ No newline at end of file\n"


def make_unified_diff(
    path: str, old_text: str | None, new_text: str | None, *, context: int = 3
) -> str:
    """A git-style unified diff (``--- a/path`` / ``+++ b/path``) from ``old`` to ``new``.

    Lines are split on ``\\n`` only; a last line without a newline is followed by
    ``\\ No newline at end of file``, so applying the diff reproduces ``new_text`` byte for
    byte. None for ``old_text`` (``new_text``) makes a create (delete) against
    ``/dev/null``. Identical texts give ``""``.

    Args:
        path: workspace-relative path, e.g. ``"src/App.tsx"``.
        old_text: content before, or None when the file is created.
        new_text: content after, or None when the file is deleted.
        context: context lines around each change (difflib's ``n``; 0 is allowed).
    """
    old_lines = _lines(old_text or "")
    new_lines = _lines(new_text or "")
    from_file = "/dev/null" if old_text is None else f"a/{path}"
    to_file = "/dev/null" if new_text is None else f"b/{path}"
    out: list[str] = []
    for line in difflib.unified_diff(old_lines, new_lines, from_file, to_file, n=context):
        out.append(line)
        if not line.endswith("\n"):  # only a body line can lack it: the file's last line
            out.append("\n" + NO_NEWLINE_MARKER)
    if not out and (old_text is None) != (new_text is None):
        # Creating or deleting an empty file: headers only, as `diff -u` would print.
        out = [f"--- {from_file}\n", f"+++ {to_file}\n"]
    return "".join(out)


def _lines(text: str) -> list[str]:
    """Split keeping ``\\n`` endings, on ``\\n`` only (unlike ``str.splitlines``)."""
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines
