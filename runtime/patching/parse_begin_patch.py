"""Parse the ``*** Begin Patch`` envelope into :class:`FileOp` values (contract 7.4).

::

    *** Begin Patch
    *** Update File: src/App.tsx
    *** Move to: src/Main.tsx          (ours: a rename, optional, before the body)
    @@ function App                    (ours: the text after @@ is an anchor)
     context
    -removed
    +added
    *** End of File                    (ours: the segment must end the file)
    *** Add File: src/new.ts
    +every line starts with +
    *** Delete File: src/old.ts
    *** End Patch

In an update body an empty line is a blank context line; trailing empty lines of a
segment are dropped as separators (dropping context never changes what a match edits).
Consecutive ``@@`` lines nest anchors (``@@ class A`` then ``@@ def f``). An anchor written
as a unified header (``@@ -3,4 +3,5 @@ tail``) keeps only its tail. In an Add File body an
empty line between ``+`` lines is a blank line; any other line is
``invalid_add_file_patch``. Any other unknown line is ``unsupported_begin_patch_line``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from runtime.patching import codes
from runtime.patching.model import FileOp, HunkLine, OpKind, ParseIssue, Segment
from runtime.patching.targets import strip_components
from runtime.textlines import split_lines

BEGIN = "*** Begin Patch"
END = "*** End Patch"
_UNIFIED_RANGE = re.compile(r"^\s*-\d+(?:,\d+)? \+\d+(?:,\d+)? @@\s*")


@dataclass
class _Builder:
    """One file section while it is being read."""

    kind: OpKind
    path: str
    move_to: str | None = None
    segments: list[Segment] = field(default_factory=list)
    anchors: list[str] = field(default_factory=list)
    body: list[HunkLine] = field(default_factory=list)
    add_lines: list[str] = field(default_factory=list)
    add_blanks: int = 0
    issues: list[ParseIssue] = field(default_factory=list)

    def start_segment(self, anchor: str | None) -> None:
        if self.body:
            self.close_segment()
        if anchor:
            self.anchors.append(anchor)

    def close_segment(self, *, end_of_file: bool = False) -> None:
        body = list(self.body)
        while body and body[-1].blank:
            body.pop()
        if body or end_of_file:
            index = len(self.segments) + 1
            self.segments.append(Segment(index, tuple(self.anchors), tuple(body), end_of_file))
        self.body, self.anchors = [], []

    def issue(self, reason: str) -> None:
        index = len(self.segments) + 1 if self.kind == "update" else 0
        if not any(i.reason == reason and i.hunk_index == index for i in self.issues):
            self.issues.append(ParseIssue(reason, index, 1))

    def build(self) -> FileOp:
        if self.kind == "update":
            self.close_segment()
            return FileOp(
                "update",
                self.path,
                move_to=self.move_to,
                segments=tuple(self.segments),
                issues=tuple(self.issues),
            )
        if self.kind == "create":
            return FileOp(
                "create", self.path, add_lines=tuple(self.add_lines), issues=tuple(self.issues)
            )
        return FileOp("delete", self.path, missing_ok=True, issues=tuple(self.issues))


def parse_begin_patch(text: str, strip: int) -> list[FileOp]:
    """Parse ``text`` as a Begin Patch envelope.

    Args:
        text: the patch; anything before ``*** Begin Patch`` is ignored, a missing
            ``*** End Patch`` is tolerated.
        strip: the strip level (see :mod:`runtime.patching.targets`).

    Returns:
        One :class:`FileOp` per ``Update``/``Add``/``Delete File`` section, or an empty
        list when there is no envelope or it names no file. Lines that belong to no section
        are reported as an ``unsupported_begin_patch_line`` issue on an op with path ``""``.
    """
    lines = split_lines(text)
    start = next((n for n, line in enumerate(lines) if line.strip() == BEGIN), None)
    if start is None:
        return []
    ops: list[FileOp] = []
    current: _Builder | None = None
    stray = False
    for raw in lines[start + 1 :]:
        header = raw.rstrip()
        if header.strip() == END:
            break
        section = _section_header(header, strip)
        if section is not None:
            if current is not None:
                ops.append(current.build())
            current = _Builder(*section)
        elif current is None:
            stray = stray or bool(header)
        elif header.startswith("*** Move to:"):
            if current.kind == "update" and not current.segments and not current.body:
                current.move_to = strip_components(header[len("*** Move to:") :].strip(), strip)
            else:
                current.issue(codes.UNSUPPORTED_BEGIN_PATCH_LINE)
        elif header == "*** End of File":
            if current.kind == "update":
                current.close_segment(end_of_file=True)
            elif current.kind == "delete":
                current.issue(codes.UNSUPPORTED_BEGIN_PATCH_LINE)
        elif header.startswith("***"):
            current.issue(codes.UNSUPPORTED_BEGIN_PATCH_LINE)
        elif current.kind == "update":
            _update_line(current, raw)
        elif current.kind == "create":
            _add_line(current, raw)
        elif header:
            current.issue(codes.UNSUPPORTED_BEGIN_PATCH_LINE)
    if current is not None:
        ops.append(current.build())
    if stray and ops:
        ops.append(
            FileOp("update", "", issues=(ParseIssue(codes.UNSUPPORTED_BEGIN_PATCH_LINE, 0, 1),))
        )
    return ops


def _section_header(line: str, strip: int) -> tuple[OpKind, str] | None:
    for prefix, kind in (
        ("*** Update File:", "update"),
        ("*** Add File:", "create"),
        ("*** Delete File:", "delete"),
    ):
        if line.startswith(prefix):
            return kind, strip_components(line[len(prefix) :].strip(), strip)  # type: ignore[return-value]
    return None


def _update_line(builder: _Builder, raw: str) -> None:
    if raw.startswith("@@"):
        anchor = _UNIFIED_RANGE.sub("", raw[2:]).strip()
        builder.start_segment(anchor or None)
    elif raw == "":
        builder.body.append(HunkLine(" ", "", blank=True))
    elif raw[0] in " -+":
        builder.body.append(HunkLine(raw[0], raw[1:]))  # type: ignore[arg-type]
    else:
        builder.issue(codes.UNSUPPORTED_BEGIN_PATCH_LINE)


def _add_line(builder: _Builder, raw: str) -> None:
    if raw.startswith("+"):
        # Empty lines between `+` lines are blank lines; trailing ones are never added.
        builder.add_lines.extend([""] * builder.add_blanks)
        builder.add_blanks = 0
        builder.add_lines.append(raw[1:])
    elif raw.strip() == "":
        builder.add_blanks += 1
    else:
        builder.issue(codes.INVALID_ADD_FILE_PATCH)
