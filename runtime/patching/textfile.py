"""A text file as lines, keeping exactly what is needed to write it back byte for byte.

Lines are split by :func:`runtime.textlines.split_lines` (on ``\\n`` only). A CRLF line
keeps its ``\\r``; matching ignores it (:func:`runtime.textlines.line_key`) so an LF patch
applies to a CRLF file. Bytes that are not UTF-8 survive a round trip through
``surrogateescape``.
"""

from __future__ import annotations

from dataclasses import dataclass

from runtime.textlines import split_lines


def mostly_crlf(lines: list[str]) -> bool:
    """True when more than half of ``lines`` end with ``\\r``."""
    return bool(lines) and sum(line.endswith("\r") for line in lines) * 2 > len(lines)


@dataclass(slots=True)
class TextFile:
    """A file's lines (without ``\\n``) and whether the last one was newline-terminated."""

    lines: list[str]
    final_newline: bool

    @classmethod
    def from_bytes(cls, data: bytes) -> TextFile:
        """Decode (UTF-8, undecodable bytes kept as surrogates) and split."""
        text = data.decode("utf-8", "surrogateescape")
        return cls(split_lines(text), text.endswith("\n"))

    def to_bytes(self) -> bytes:
        """Join with ``\\n``; an empty file stays empty whatever ``final_newline`` says."""
        if not self.lines:
            return b""
        text = "\n".join(self.lines) + ("\n" if self.final_newline else "")
        return text.encode("utf-8", "surrogateescape")

    @property
    def crlf(self) -> bool:
        """The file's dominant line ending is CRLF (added lines will get one too)."""
        terminated = self.lines if self.final_newline else self.lines[:-1]
        return mostly_crlf(terminated)
