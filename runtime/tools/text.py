"""Line-range extraction shared by read_file_range and collect_context (contract 7.3)."""

from __future__ import annotations

from dataclasses import dataclass

MIN_RANGE_BYTES = 256
TRUNCATION_SUFFIX = "... [truncated]"


@dataclass(frozen=True)
class LineRange:
    """A rendered window of a file: 1-based inclusive lines, ``line_count`` of the file."""

    start_line: int
    end_line: int
    content: str
    line_count: int
    truncated: bool


def split_lines(text: str) -> list[str]:
    """Lines of ``text`` without terminators; a final newline does not start a new line."""
    if not text:
        return []
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def line_range(
    text: str,
    *,
    start_line: int | None = None,
    end_line: int | None = None,
    context_before: int = 0,
    context_after: int = 0,
    max_bytes: int = 12000,
    with_line_numbers: bool = False,
) -> LineRange:
    """Render lines ``start_line..end_line`` widened by context, clamped to the file.

    Start defaults to 1, end to start; an end before start becomes start; numbered lines
    render as ``N: text``; content is cut at ``max_bytes`` UTF-8 bytes (never below 256)
    on a character boundary. An empty file gives lines 1..1, empty content, line_count 0.
    """
    lines = split_lines(text)
    count = len(lines)
    start = max(1, start_line or 1)
    end = max(start, end_line or start)
    start = max(1, start - max(0, context_before))
    end = end + max(0, context_after)
    if count == 0:
        return LineRange(1, 1, "", 0, False)
    start = min(start, count)
    end = min(end, count)
    chosen = lines[start - 1 : end]
    if with_line_numbers:
        chosen = [f"{start + i}: {line}" for i, line in enumerate(chosen)]
    content, truncated = cut_bytes("\n".join(chosen), max(MIN_RANGE_BYTES, max_bytes))
    return LineRange(start, end, content, count, truncated)


def cut_bytes(text: str, limit: int) -> tuple[str, bool]:
    """``text`` cut to at most ``limit`` UTF-8 bytes on a character boundary, and whether
    anything was cut."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text, False
    return data[:limit].decode("utf-8", errors="ignore"), True
