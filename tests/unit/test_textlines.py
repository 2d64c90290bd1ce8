"""The one numbered range read (contract 7.3 read_file_range, 7.4 refresh windows)."""

from __future__ import annotations

import hashlib
from typing import Any

from runtime.textlines import line_window, range_result, split_lines


def numbered_read(text: str, start: int, end: int, max_bytes: int = 12_000) -> dict[str, Any]:
    data = text.encode()
    window = line_window(
        text, start_line=start, end_line=end, max_bytes=max_bytes, with_line_numbers=True
    )
    return range_result(data, window)


def test_numbered_range_clamps() -> None:
    window = numbered_read("one\ntwo\nthree\n", 2, 99)
    assert window["content"] == "2: two\n3: three"
    assert (window["start_line"], window["end_line"], window["line_count"]) == (2, 3, 2)
    assert numbered_read("one\ntwo\nthree\n", 3, 1)["content"] == "3: three"
    empty = numbered_read("", 5, 9)
    assert (empty["start_line"], empty["end_line"], empty["content"], empty["line_count"]) == (
        1,
        1,
        "",
        0,
    )


def test_size_and_hash_describe_the_whole_file() -> None:
    text = "a\r\nb\r\nc\r\n"
    window = numbered_read(text, 2, 2)
    assert window["content"] == "2: b"  # CRLF endings never shown
    assert window["size_bytes"] == len(text.encode())
    assert window["sha256"] == hashlib.sha256(text.encode()).hexdigest()


def test_undecodable_bytes_count_one_byte_and_are_dropped_where_cut() -> None:
    text = (b"\xff" * 300 + b"\n").decode("utf-8", "surrogateescape")
    whole = line_window(text, max_bytes=400)
    assert whole.content == text[:-1] and not whole.truncated
    cut = line_window(text, with_line_numbers=True, max_bytes=256)
    assert cut.truncated and cut.content == "1: "


def test_split_lines_keeps_carriage_returns() -> None:
    assert split_lines("a\r\nb") == ["a\r", "b"]
    assert split_lines("a\n\n") == ["a", ""]
    assert split_lines("") == []
