"""Parse unified diffs (``diff -u`` / ``git diff``) into :class:`FileOp` values.

Accepted (contract 7.4): optional ``diff --git`` headers; ``---``/``+++`` headers (anything
after a tab is a timestamp and ignored; git C-quoted names unquoted); ``@@ -a,b +c,d @@``
hunks with counts defaulting to 1; ``/dev/null`` and ``new file mode`` / ``deleted file
mode`` for create/delete; ``rename from`` / ``rename to``. Lines between sections that are
not headers (prose, code fences) are ignored.

Hunk bodies are read by their declared counts, so a removed line that itself starts with
``-- `` is not mistaken for a header. An empty line inside a hunk is a blank context line.
A ``\\`` line (``\\ No newline at end of file``) marks the line before it. Two tolerances,
neither about content: a body that ends before its counts are used up (next header, a
non-hunk line, or end of text) is taken as it is, trailing empty lines dropped as
separators; a body that runs on past its counts is an ``unsupported_hunk_line`` failure
rather than silently dropped edits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from runtime.patching import codes
from runtime.patching.model import FileOp, Hunk, HunkLine, ParseIssue
from runtime.patching.targets import strip_components, unquote_git_path
from runtime.textlines import split_lines

_HUNK_HEADER = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_DEV_NULL = "/dev/null"


@dataclass
class _Section:
    """Headers and hunks of one file section while it is being read."""

    git_old: str | None = None
    git_new: str | None = None
    minus: str | None = None
    plus: str | None = None
    minus_seen: bool = False
    rename_from: str | None = None
    rename_to: str | None = None
    new_file: bool = False
    deleted_file: bool = False
    hunks: list[Hunk] = field(default_factory=list)
    issues: list[ParseIssue] = field(default_factory=list)

    @property
    def has_target(self) -> bool:
        return self.minus_seen or self.git_old is not None


def parse_unified(text: str, strip: int) -> list[FileOp]:
    """Parse ``text`` as a unified diff.

    Args:
        text: the patch.
        strip: the strip level, applied by :func:`~runtime.patching.targets.strip_components`.

    Returns:
        One :class:`FileOp` per file section that changes something (hunks, create, delete
        or rename); an empty list when the text holds no unified diff.
    """
    lines = split_lines(text)
    ops: list[FileOp] = []
    section: _Section | None = None
    just_after_hunk = False
    i = 0
    while i < len(lines):
        line = lines[i]
        after_hunk, just_after_hunk = just_after_hunk, False
        if line.startswith("diff --git "):
            _finish(section, ops, strip)
            section = _Section()
            section.git_old, section.git_new = _git_header_paths(line[len("diff --git ") :])
        elif line.startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ "):
            if section is None or section.minus_seen or section.hunks:
                _finish(section, ops, strip)
                section = _Section()
            section.minus_seen = True
            section.minus = _header_path(line[4:])
            section.plus = _header_path(lines[i + 1][4:])
            i += 1
        elif line.startswith("@@") and section is not None and section.has_target:
            i = _read_hunk(lines, i, section)
            just_after_hunk = True
            continue
        elif line == "-- ":
            break  # `git format-patch` signature: the patch is over
        elif section is not None and not section.hunks and _header_hint(section, line):
            pass
        elif after_hunk and section is not None and line[:1] in (" ", "+", "-"):
            last = section.hunks[-1] if section.hunks else None
            index = last.index if last else 1
            start = last.old_start if last else 1
            section.issues.append(ParseIssue(codes.UNSUPPORTED_HUNK_LINE, index, start))
        i += 1
    _finish(section, ops, strip)
    return ops


def _read_hunk(lines: list[str], i: int, section: _Section) -> int:
    """Read the hunk whose header is ``lines[i]`` into ``section``; return the next index."""
    index = len(section.hunks) + 1
    match = _HUNK_HEADER.match(lines[i])
    if match is None:
        section.issues.append(ParseIssue(codes.UNSUPPORTED_HUNK_LINE, index, 1))
        return i + 1
    old_start, new_start = int(match[1]), int(match[3])
    old_count = 1 if match[2] is None else int(match[2])
    new_count = 1 if match[4] is None else int(match[4])
    old_left, new_left = old_count, new_count
    body: list[HunkLine] = []
    i += 1
    while i < len(lines) and (old_left > 0 or new_left > 0):
        raw = lines[i]
        if raw.startswith("\\"):
            _mark_no_newline(body)
            i += 1
            continue
        if raw == "":
            item = HunkLine(" ", "", blank=True)
        elif raw[0] in " -+":
            item = HunkLine(raw[0], raw[1:])  # type: ignore[arg-type]
        else:
            break
        body.append(item)
        old_left -= item.kind != "+"
        new_left -= item.kind != "-"
        i += 1
    if old_left > 0 or new_left > 0:
        while body and body[-1].blank:
            body.pop()  # the body ran short: trailing empty lines were separators
    while i < len(lines) and lines[i].startswith("\\"):
        _mark_no_newline(body)
        i += 1
    hunk = Hunk(index, old_start, old_count, new_start, new_count, tuple(body))
    section.hunks.append(hunk)
    return i


def _mark_no_newline(body: list[HunkLine]) -> None:
    if body:
        body[-1] = replace(body[-1], no_newline=True)


def _header_hint(section: _Section, line: str) -> bool:
    """Record a git extended header line; False if ``line`` is not one we use."""
    if line.startswith("new file mode"):
        section.new_file = True
    elif line.startswith("deleted file mode"):
        section.deleted_file = True
    elif line.startswith("rename from "):
        section.rename_from = _plain_path(line[len("rename from ") :])
    elif line.startswith("rename to "):
        section.rename_to = _plain_path(line[len("rename to ") :])
    else:
        return False
    return True


def _finish(section: _Section | None, ops: list[FileOp], strip: int) -> None:
    """Turn a finished section into a FileOp (or nothing, for e.g. a mode-only change)."""
    if section is None:
        return

    def stripped(path: str | None) -> str | None:
        return None if path is None else strip_components(path, strip)

    minus, plus = stripped(section.minus), stripped(section.plus)
    old = section.rename_from or minus or stripped(section.git_old)
    new = section.rename_to or plus or stripped(section.git_new)
    creating = section.new_file or (section.minus_seen and section.minus is None)
    deleting = section.deleted_file or (section.minus_seen and section.plus is None)
    hunks, issues = tuple(section.hunks), tuple(section.issues)
    if creating and deleting:
        return
    if creating and new:
        ops.append(FileOp("create", new, hunks=hunks, issues=issues))
    elif deleting and old:
        ops.append(FileOp("delete", old, hunks=hunks, issues=issues))
    elif (section.rename_from or section.rename_to) and old and new and old != new:
        ops.append(FileOp("update", old, move_to=new, hunks=hunks, issues=issues))
    elif (hunks or issues) and (new or old):
        # Without rename headers the `+++` side names the file (what `git apply` does).
        ops.append(FileOp("update", new or old or "", hunks=hunks, issues=issues))


def _plain_path(text: str) -> str:
    text = text.rstrip("\r")
    return unquote_git_path(text)[0] if text.startswith('"') else text


def _header_path(text: str) -> str | None:
    """The path of a ``---``/``+++`` line; None for ``/dev/null``."""
    if text.startswith('"'):
        path = unquote_git_path(text)[0]
    else:
        path = text.split("\t", 1)[0].rstrip()
    return None if path == _DEV_NULL else path


def _git_header_paths(rest: str) -> tuple[str | None, str | None]:
    """The two paths of a ``diff --git a/x b/y`` line (quoted or not)."""
    rest = rest.rstrip("\r")
    if rest.startswith('"'):
        old, tail = unquote_git_path(rest)
        tail = tail.lstrip(" ")
        new = unquote_git_path(tail)[0] if tail.startswith('"') else tail
        return old, new or None
    if ' "' in rest:
        old, _, tail = rest.partition(' "')
        return old, unquote_git_path('"' + tail)[0]
    # Unquoted names may contain spaces: prefer the split where both sides name the same
    # file (the usual case), then the last " b/".
    half = len(rest) // 2
    if len(rest) % 2 == 1 and rest[half] == " " and rest[2:half] == rest[half + 3 :]:
        return rest[:half], rest[half + 1 :]
    cut = rest.rfind(" b/")
    if cut > 0:
        return rest[:cut], rest[cut + 1 :]
    old, _, new = rest.partition(" ")
    return old or None, new or None
