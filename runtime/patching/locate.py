"""Place hunks and segments in a file's lines and splice the changes in.

Unified hunks (ours, docs/design.md 8.9: offset search): a hunk is tried at its declared line
first (shifted by how far the previous hunk of the file moved, as ``patch`` does); if its
context and removed lines do not match there, the lines ``target+1, target-1, target+2, ...``
are tried up to :data:`MAX_HUNK_OFFSET` away, nearest first and later before earlier at equal
distance. Content is always compared exactly (only a CRLF ``\\r`` is ignored): no fuzz.
Hunks must not overlap and stay in file order.

Begin Patch segments (contract 7.4, plus anchors and ``*** End of File``): the block of
context+removed lines is searched as a contiguous run after the segment's anchor line when
one is given and found, then from the end of the previous edit, then from the top.

Context lines are copied from the file (keeping their own line endings); added lines get
the file's dominant ending.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from runtime.patching import codes
from runtime.patching.failures import hunk_failure
from runtime.patching.model import Failure, Hunk, HunkLine, Segment
from runtime.textlines import line_key

MAX_HUNK_OFFSET = 100
"""How many lines away from its declared position a unified hunk is searched for."""


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a unified hunk applied, when that was not its declared line.

    Lines are 1-based; for a pure insertion (no old lines) they are the line the new text
    follows, as in the hunk header. ``offset = applied_start_line - expected_start_line``.
    """

    hunk_index: int
    expected_start_line: int
    applied_start_line: int

    @property
    def offset(self) -> int:
        """Positive when the hunk applied further down than declared."""
        return self.applied_start_line - self.expected_start_line


@dataclass(slots=True)
class Spliced:
    """The new lines of a file and what went wrong; ``lines`` is meaningless on failure."""

    lines: list[str]
    failures: list[Failure] = field(default_factory=list)
    moved: list[Placement] = field(default_factory=list)


def apply_hunks(
    path: str,
    lines: Sequence[str],
    hunks: Sequence[Hunk],
    *,
    crlf: bool,
    max_offset: int = MAX_HUNK_OFFSET,
) -> Spliced:
    """Apply unified hunks to ``lines`` (see the module docstring for placement rules).

    Failures carry reason ``invalid_hunk_offset`` (declared start beyond the file, or
    overlapping the previous hunk), ``deletion_mismatch`` (the first differing line at the
    declared position is a removed line) or ``context_mismatch``.
    """
    result = Spliced([])
    drift = 0
    done = 0  # lines[:done] are settled: copied to the result or consumed by a hunk
    for hunk in hunks:
        keys = [line_key(line.text) for line in hunk.old_side]
        # A hunk without old lines inserts *after* line old_start (git, difflib).
        expected = hunk.old_start if not keys else max(hunk.old_start - 1, 0)
        at = _place(lines, keys, expected + drift, done, max_offset)
        if at is None:
            result.failures.append(_hunk_mismatch(path, lines, hunk, keys, expected + drift, done))
            continue
        if at != expected:
            base = 0 if not keys else 1
            result.moved.append(Placement(hunk.index, hunk.old_start, at + base))
        drift = at - expected
        result.lines.extend(lines[done:at])
        result.lines.extend(_render(hunk.lines, lines, at, crlf))
        done = at + len(keys)
    result.lines.extend(lines[done:])
    return result


def apply_segments(
    path: str, lines: Sequence[str], segments: Sequence[Segment], *, crlf: bool
) -> Spliced:
    """Apply Begin Patch segments to ``lines`` in order (see the module docstring).

    A segment whose block is not found fails with ``context_mismatch`` (or
    ``deletion_mismatch`` when it only removes lines).
    """
    work = list(lines)
    failures: list[Failure] = []
    cursor = 0
    for segment in segments:
        keys = [line_key(line.text) for line in segment.old_side]
        anchor = _find_anchors(work, segment.anchors, cursor)
        at = _locate_block(work, keys, segment.end_of_file, cursor, anchor)
        if at is None:
            failures.append(_segment_mismatch(path, work, segment, keys, cursor, anchor))
            continue
        new = _render(segment.lines, work, at, crlf)
        work[at : at + len(keys)] = new
        cursor = at + len(new)
    return Spliced(work, failures)


def _matches(lines: Sequence[str], at: int, keys: Sequence[str]) -> bool:
    if at < 0 or at + len(keys) > len(lines):
        return False
    return all(line_key(lines[at + n]) == key for n, key in enumerate(keys))


def _place(
    lines: Sequence[str], keys: Sequence[str], target: int, floor: int, max_offset: int
) -> int | None:
    """The start index for a hunk near ``target`` at or after ``floor``, nearest first."""
    if not keys:
        return target if floor <= target <= len(lines) else None
    for distance in range(max_offset + 1):
        for at in (target + distance, target - distance) if distance else (target,):
            if at >= floor and _matches(lines, at, keys):
                return at
    return None


def _render(body: Sequence[HunkLine], lines: Sequence[str], at: int, crlf: bool) -> list[str]:
    """The new-side lines of a hunk placed at ``at``."""
    out: list[str] = []
    index = at
    for line in body:
        if line.kind == " ":
            out.append(lines[index])
            index += 1
        elif line.kind == "-":
            index += 1
        else:
            out.append(line_key(line.text) + ("\r" if crlf else ""))
    return out


def _hunk_mismatch(
    path: str, lines: Sequence[str], hunk: Hunk, keys: Sequence[str], target: int, floor: int
) -> Failure:
    old_side = hunk.old_side
    beyond_end = hunk.old_start > len(lines) if keys else target > len(lines)
    if beyond_end or target < floor:
        focus = min(max(hunk.old_start, 1), max(len(lines), 1))
        reason = codes.INVALID_HUNK_OFFSET
        return hunk_failure(path, hunk.index, hunk.old_start, hunk.old_count, reason, lines, focus)
    differs = next((n for n, key in enumerate(keys) if not _matches(lines, target + n, [key])), 0)
    reason = codes.DELETION_MISMATCH if old_side[differs].kind == "-" else codes.CONTEXT_MISMATCH
    return hunk_failure(
        path, hunk.index, hunk.old_start, hunk.old_count, reason, lines, target + differs + 1
    )


def _find_anchors(lines: Sequence[str], anchors: Sequence[str], cursor: int) -> int | None:
    """Index of the last anchor line, each found after the previous; None if any is missing."""
    found: int | None = None
    for anchor in anchors:
        if found is None:
            found = _find_anchor(lines, anchor, cursor)
            if found is None:
                found = _find_anchor(lines, anchor, 0)
        else:
            found = _find_anchor(lines, anchor, found + 1)
        if found is None:
            return None
    return found


def _find_anchor(lines: Sequence[str], anchor: str, start: int) -> int | None:
    """First line from ``start`` equal to ``anchor`` (ignoring surrounding whitespace),
    else the first containing it."""
    wanted = anchor.strip()
    for n in range(start, len(lines)):
        if line_key(lines[n]).strip() == wanted:
            return n
    for n in range(start, len(lines)):
        if wanted in lines[n]:
            return n
    return None


def _find_block(lines: Sequence[str], keys: Sequence[str], start: int) -> int | None:
    for at in range(max(start, 0), len(lines) - len(keys) + 1):
        if _matches(lines, at, keys):
            return at
    return None


def _locate_block(
    lines: Sequence[str], keys: Sequence[str], end_of_file: bool, cursor: int, anchor: int | None
) -> int | None:
    if end_of_file:
        last = len(lines) - len(keys)
        return last if _matches(lines, last, keys) else None
    if not keys:
        # Pure addition: after the anchor line, else at the end of the file.
        return len(lines) if anchor is None else anchor + 1
    starts = ([anchor] if anchor is not None else []) + [cursor, 0]
    for start in starts:
        found = _find_block(lines, keys, start)
        if found is not None:
            return found
    return None


def _segment_mismatch(
    path: str,
    lines: Sequence[str],
    segment: Segment,
    keys: Sequence[str],
    cursor: int,
    anchor: int | None,
) -> Failure:
    start = anchor if anchor is not None else cursor
    # Point at the first line of the block if it occurs at all: usually the model's copy of
    # the code is stale a few lines further down.
    first = _find_block(lines, keys[:1], start) if keys else None
    if first is None and keys:
        first = _find_block(lines, keys[:1], 0)
    line = (first if first is not None else start) + 1
    only_removals = bool(keys) and all(item.kind == "-" for item in segment.old_side)
    reason = codes.DELETION_MISMATCH if only_removals else codes.CONTEXT_MISMATCH
    return hunk_failure(path, segment.index, line, len(keys), reason, lines)
