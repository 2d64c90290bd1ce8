"""Build failure items: previews and recommended refresh windows (contract 7.4)."""

from __future__ import annotations

from collections.abc import Sequence

from runtime.patching import codes
from runtime.patching.model import Failure
from runtime.textlines import numbered_line

PREVIEW_LINES = 5
HUNK_REFRESH_MARGIN = 12
FILE_REFRESH = (1, 120)
PRECONDITION_REFRESH = (1, 200)


def preview(lines: Sequence[str], focus_line: int) -> tuple[str, ...]:
    """Up to 5 ``"N: text"`` lines centred on ``focus_line`` (1-based), clamped to the file."""
    if not lines:
        return ()
    first = max(1, min(focus_line, len(lines)) - PREVIEW_LINES // 2)
    last = min(len(lines), first + PREVIEW_LINES - 1)
    first = max(1, last - PREVIEW_LINES + 1)
    return tuple(numbered_line(n, lines[n - 1]) for n in range(first, last + 1))


def hunk_refresh(start_line: int, count: int) -> tuple[int, int]:
    """``max(1, start-12) .. start + max(count, 1) + 12`` (contract 7.4)."""
    start = max(1, start_line)
    return max(1, start - HUNK_REFRESH_MARGIN), start + max(count, 1) + HUNK_REFRESH_MARGIN


def hunk_failure(
    path: str,
    index: int,
    start_line: int,
    count: int,
    reason: str,
    lines: Sequence[str],
    focus_line: int | None = None,
) -> Failure:
    """A failure of hunk/segment ``index`` declared at ``start_line`` spanning ``count``."""
    focus = start_line if focus_line is None else focus_line
    return Failure(
        path=path,
        hunk_index=index,
        expected_start_line=max(1, start_line),
        reason=reason,
        preview=preview(lines, focus),
        refresh=hunk_refresh(start_line, count),
    )


def file_failure(path: str, reason: str, lines: Sequence[str] = ()) -> Failure:
    """A file-level failure (hunk_index 0, refresh 1..120)."""
    return Failure(path, 0, 1, reason, preview(lines, 1), FILE_REFRESH)


def precondition_failure(path: str, lines: Sequence[str]) -> Failure:
    """An ``expected_hashes`` mismatch (refresh 1..200)."""
    return Failure(
        path, 0, 1, codes.PRECONDITION_HASH_MISMATCH, preview(lines, 1), PRECONDITION_REFRESH
    )


def policy_failure(path: str) -> Failure:
    """A path the policy rejected; there is nothing to preview or re-read."""
    return Failure(path, 0, 1, codes.PATH_POLICY_VIOLATION, (), FILE_REFRESH)
