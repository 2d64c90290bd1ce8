"""Numbered line windows of a file, as ``read_file_range`` returns them (contract 7.3)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from runtime.patching.textfile import TextFile, line_key

MIN_MAX_BYTES = 256


def read_numbered_range(
    path: Path, start_line: int, end_line: int, max_bytes: int
) -> dict[str, Any]:
    """Read lines ``start_line..end_line`` of ``path`` rendered as ``"N: text"``.

    Clamping follows ``read_file_range``: start at least 1, end at least start, both clamped
    to the file; an empty file gives start 1, end 1, empty content, line_count 0. Content is
    cut to ``max(max_bytes, 256)`` UTF-8 bytes (never inside a character).

    Returns:
        ``{start_line, end_line, content, line_count, truncated, size_bytes, sha256}``;
        ``size_bytes`` and ``sha256`` are of the whole file.

    Raises:
        OSError: the file cannot be read.
    """
    data = path.read_bytes()
    lines = TextFile.from_bytes(data).lines
    start = max(1, start_line)
    end = max(start, end_line)
    if lines:
        start, end = min(start, len(lines)), min(end, len(lines))
        content = "\n".join(f"{n}: {line_key(lines[n - 1])}" for n in range(start, end + 1))
        count = end - start + 1
    else:
        start, end, content, count = 1, 1, "", 0
    limit = max(max_bytes, MIN_MAX_BYTES)
    encoded = content.encode("utf-8", "surrogateescape")
    truncated = len(encoded) > limit
    if truncated:
        content = encoded[:limit].decode("utf-8", "ignore")
    return {
        "start_line": start,
        "end_line": end,
        "content": content,
        "line_count": count,
        "truncated": truncated,
        "size_bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
