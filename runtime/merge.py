"""Three-way merge of a run's files onto the app's current draft (issue 11 item 4).

Pure functions, no I/O. A run works on its base revision; when the draft moved while it
worked (another run applied, a user saved), auto-apply merges per file:

- ``base``: the run's base revision (what both sides started from),
- ``ours``: the app's current draft,
- ``theirs``: the run's finished workspace.

The rules, per path (a missing file is "absent"):

1. Both sides the same (equal content, or both absent): that.
2. Only one side changed the file relative to ``base`` (modified, added or deleted): that
   side's version. So a file only the run added is added; a file only the run deleted is
   deleted; a file only the draft changed keeps the draft's change.
3. Both changed it, differently:
   - both still have it and ``base`` had it, all three text: a line-based three-way merge
     (``merge3``, the diff3 algorithm of Breezy). Changes separated by at least one
     unchanged line combine; changes to the same or adjacent lines are a **conflict**;
   - one side deleted it and the other modified it: a **conflict**;
   - both added it with different contents: a **conflict** (nothing to merge from);
   - a version that is not line text (holds a NUL byte): a **conflict**, never a line merge.
     (Revisions hold UTF-8 text only, contract 8: binary files in a workspace are left out
     of the snapshot before any merge, as they always were.)

A merge with any conflict applies nothing: the run fails with ``REVISION_CONFLICT`` and
lists the conflicting paths.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from merge3 import Merge3


@dataclass(frozen=True, slots=True)
class MergeResult:
    """The merged files and the paths that conflict.

    Attributes:
        files: ``{path: text}``, the merged revision (meaningful only without conflicts).
        conflicts: sorted paths that both sides changed in overlapping ways.
    """

    files: dict[str, str]
    conflicts: tuple[str, ...]


class _Conflict(Exception):
    """Internal: one file's changes overlap."""


def merge_files(
    base: Mapping[str, str], ours: Mapping[str, str], theirs: Mapping[str, str]
) -> MergeResult:
    """Merge ``theirs`` (the run) onto ``ours`` (the current draft) against ``base``.

    Args:
        base, ours, theirs: ``{path: text}`` maps (paths already normalised).

    Returns:
        The merged files and the conflicting paths (the module docstring's rules).
    """
    files: dict[str, str] = {}
    conflicts: list[str] = []
    for path in sorted(set(base) | set(ours) | set(theirs)):
        try:
            merged = merge_file(base.get(path), ours.get(path), theirs.get(path))
        except _Conflict:
            conflicts.append(path)
            continue
        if merged is not None:
            files[path] = merged
    return MergeResult(files, tuple(conflicts))


def merge_file(base: str | None, ours: str | None, theirs: str | None) -> str | None:
    """One file's merge; None means the file is absent from the result.

    Raises:
        _Conflict: both sides changed it in overlapping ways (see the module rules).
    """
    if ours == theirs:
        return ours
    if theirs == base:
        return ours
    if ours == base:
        return theirs
    if base is None or ours is None or theirs is None:
        raise _Conflict()  # add/add with different contents, or modify/delete
    if any("\x00" in text for text in (base, ours, theirs)):
        raise _Conflict()  # not line text: no line merge
    return merge_lines(base, ours, theirs)


def merge_lines(base: str, ours: str, theirs: str) -> str:
    """Line-based three-way merge of one text (line ends kept as they are).

    Raises:
        _Conflict: a region changed on both sides differently.
    """
    merger = Merge3(
        base.splitlines(keepends=True),
        ours.splitlines(keepends=True),
        theirs.splitlines(keepends=True),
    )
    out: list[str] = []
    for group in merger.merge_groups():
        if group[0] == "conflict":
            raise _Conflict()
        out.extend(group[1])
    return "".join(out)
