"""Lines of a text file and numbered line windows: the one ``read_file_range`` (contract 7.3).

The ``read_file_range`` tool, ``collect_context`` snippets and the patch envelope's
``refresh_windows`` (contract 7.4: "read_file_range results, numbered") all render their
windows here. The module imports nothing from ``runtime.tools`` or ``runtime.patching`` so
both can use it without an import cycle.

Lines are split on ``\\n`` only (``str.splitlines`` would also split on form feeds and
Unicode separators, which diff tools do not). Text decoded with ``surrogateescape`` is
accepted: undecodable bytes count one byte each and are dropped only where content is cut.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

MIN_RANGE_BYTES = 256
DEFAULT_RANGE_BYTES = 12_000


def split_lines(text: str) -> list[str]:
    """Split on ``\\n``; a final newline does not start an extra empty line.

    A CRLF line keeps its ``\\r`` (so a file can be written back byte for byte); use
    :func:`line_key` to compare or show it.
    """
    if not text:
        return []
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


def line_key(line: str) -> str:
    """The comparable form of a line: one trailing ``\\r`` (a CRLF ending) removed."""
    return line[:-1] if line.endswith("\r") else line


def numbered_line(number: int, line: str) -> str:
    """``"N: text"``, the contract's rendering of line ``number`` (1-based), without ``\\r``."""
    return f"{number}: {line_key(line)}"


def cut_bytes(text: str, limit: int) -> tuple[str, bool]:
    """``text`` cut to at most ``limit`` UTF-8 bytes on a character boundary, and whether
    anything was cut."""
    data = text.encode("utf-8", "surrogateescape")
    if len(data) <= limit:
        return text, False
    return data[:limit].decode("utf-8", "ignore"), True


@dataclass(frozen=True)
class LineWindow:
    """A rendered window of a text (contract 7.3 ``read_file_range``)."""

    start_line: int
    """First line shown, 1-based (1 for an empty file)."""
    end_line: int
    """Last line shown, inclusive (1 for an empty file)."""
    content: str
    """The lines joined with ``\\n``, numbered ``"N: text"`` if asked, cut to the byte cap."""
    line_count: int
    """Lines in the window, ``end_line - start_line + 1``; 0 for an empty file."""
    truncated: bool
    """``content`` was cut at the byte cap."""


def line_window(
    text: str,
    *,
    start_line: int | None = None,
    end_line: int | None = None,
    context_before: int = 0,
    context_after: int = 0,
    max_bytes: int = DEFAULT_RANGE_BYTES,
    with_line_numbers: bool = False,
) -> LineWindow:
    """Lines ``start_line..end_line`` of ``text``, widened by context and clamped to it.

    Rules of contract 7.3: start defaults to 1, end to start; an end before start becomes
    start; ``context_before`` / ``context_after`` (negative counts as 0) widen the window;
    both ends are clamped to the text; numbered lines render as ``N: text`` (CRLF endings
    never shown); content is cut at ``max_bytes`` UTF-8 bytes (never below 256) on a
    character boundary, with no suffix. An empty text gives lines 1..1, empty content,
    line_count 0.
    """
    lines = split_lines(text)
    if not lines:
        return LineWindow(1, 1, "", 0, False)
    start = max(1, start_line or 1)
    end = max(start, end_line or start)
    start = min(max(1, start - max(0, context_before)), len(lines))
    end = min(end + max(0, context_after), len(lines))
    chosen = range(start, end + 1)
    if with_line_numbers:
        rendered = [numbered_line(n, lines[n - 1]) for n in chosen]
    else:
        rendered = [line_key(lines[n - 1]) for n in chosen]
    content, truncated = cut_bytes("\n".join(rendered), max(MIN_RANGE_BYTES, max_bytes))
    return LineWindow(start, end, content, end - start + 1, truncated)


def range_result(data: bytes, window: LineWindow) -> dict[str, Any]:
    """The file fields of a ``read_file_range`` result (contract 7.3).

    Args:
        data: the whole file as stored.
        window: the :func:`line_window` of ``data``'s text.

    Returns:
        ``{start_line, end_line, content, line_count, truncated, size_bytes, sha256}``;
        ``size_bytes`` and ``sha256`` describe the whole file, the rest the window.
    """
    return {
        "start_line": window.start_line,
        "end_line": window.end_line,
        "content": window.content,
        "line_count": window.line_count,
        "truncated": window.truncated,
        "size_bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
