"""What the parsers produce and the applier consumes: file operations, hunks, failures.

Both patch formats (unified diff and the ``*** Begin Patch`` envelope) are parsed into
:class:`FileOp` values, so the applier has one input shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

OpKind = Literal["update", "create", "delete"]


@dataclass(frozen=True, slots=True)
class HunkLine:
    """One body line of a unified hunk or a Begin Patch segment."""

    kind: Literal[" ", "-", "+"]
    """``" "`` context, ``"-"`` removed, ``"+"`` added."""
    text: str
    """The line without its marker and without ``\\n`` (a CRLF patch leaves a ``\\r``)."""
    no_newline: bool = False
    """Followed by ``\\ No newline at end of file``: this side of the file ends here, bare."""
    blank: bool = False
    """Written as an empty patch line (a blank context line, or a separator to drop)."""


@dataclass(frozen=True, slots=True)
class Hunk:
    """A unified ``@@ -a,b +c,d @@`` hunk; ``index`` is 1-based within its file section."""

    index: int
    old_start: int
    old_count: int
    """As declared in the header (used for refresh windows); the body is authoritative."""
    new_start: int
    new_count: int
    lines: tuple[HunkLine, ...]

    @property
    def old_side(self) -> tuple[HunkLine, ...]:
        """Context and removed lines: what must be found in the file."""
        return tuple(line for line in self.lines if line.kind != "+")

    @property
    def old_lacks_newline(self) -> bool:
        """The patch says the old file ends without a newline inside this hunk."""
        return any(line.no_newline for line in self.lines if line.kind != "+")

    @property
    def new_lacks_newline(self) -> bool:
        """The patch says the new file ends without a newline inside this hunk."""
        return any(line.no_newline for line in self.lines if line.kind != "-")


@dataclass(frozen=True, slots=True)
class Segment:
    """A Begin Patch update segment (the lines after an ``@@`` marker).

    ``anchors`` are the texts after consecutive ``@@`` markers (outermost first); each is
    searched after the previous one and the segment's block is searched after the last.
    """

    index: int
    anchors: tuple[str, ...]
    lines: tuple[HunkLine, ...]
    end_of_file: bool = False
    """``*** End of File`` followed the segment: its block must end the file."""

    @property
    def old_side(self) -> tuple[HunkLine, ...]:
        """Context and removed lines: the block searched for in the file."""
        return tuple(line for line in self.lines if line.kind != "+")


@dataclass(frozen=True, slots=True)
class ParseIssue:
    """A problem found while parsing one file section; it becomes a failure item."""

    reason: str
    hunk_index: int
    line: int
    """The best known line of the file the problem is about (1-based)."""


@dataclass(frozen=True, slots=True)
class FileOp:
    """One file section of a patch, in either format.

    ``path`` is the file read (update, delete) or written (create); ``move_to`` is the
    destination of a rename. Exactly one of ``hunks`` / ``segments`` / ``add_lines``
    carries the change (or none: a pure delete or rename). Paths are as written in the patch
    after ``strip``; the path policy has not been applied yet.
    """

    kind: OpKind
    path: str
    move_to: str | None = None
    hunks: tuple[Hunk, ...] = ()
    segments: tuple[Segment, ...] = ()
    add_lines: tuple[str, ...] | None = None
    missing_ok: bool = False
    """A Begin Patch ``Delete File`` of a missing file is silently a no-op (contract 7.4)."""
    issues: tuple[ParseIssue, ...] = ()


@dataclass(frozen=True, slots=True)
class Failure:
    """A failure item of the runtime result (contract 7.4), see :meth:`to_dict`."""

    path: str
    hunk_index: int
    """1-based hunk or segment number; 0 for a file-level failure."""
    expected_start_line: int
    reason: str
    preview: tuple[str, ...]
    """Up to 5 ``"N: text"`` lines of the file around the problem."""
    refresh: tuple[int, int]
    """Recommended ``(start_line, end_line)`` to re-read before retrying."""

    def to_dict(self) -> dict[str, Any]:
        """The contract's failure item ``{path, hunk_index, expected_start_line, reason,
        actual_context_preview, recommended_refresh: {start_line, end_line}}``."""
        return {
            "path": self.path,
            "hunk_index": self.hunk_index,
            "expected_start_line": self.expected_start_line,
            "reason": self.reason,
            "actual_context_preview": list(self.preview),
            "recommended_refresh": {"start_line": self.refresh[0], "end_line": self.refresh[1]},
        }
