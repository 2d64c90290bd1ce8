"""The workspace as the patch sees it: disk plus staged, not yet written, changes.

Everything is computed in memory first; :meth:`Workspace.commit` then writes each file
atomically (temp file in the same directory + ``os.replace``) and, if a write fails part
way, puts back the files it already changed, so a patch is all-or-nothing on disk too.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path

from runtime.atomic_write import atomic_write
from runtime.paths import resolve_inside


class Workspace:
    """Reads through staged changes; writes only on :meth:`commit`.

    Keys are normalised workspace-relative paths (already accepted by the policy).
    """

    def __init__(self, root: Path) -> None:
        self._root = root
        self._disk: dict[str, bytes | None] = {}
        self._staged: dict[str, bytes | None] = {}

    def path(self, relative: str) -> Path:
        """The absolute file for ``relative`` (symlinks resolved, proven inside the root)."""
        return resolve_inside(self._root, relative)

    def read(self, relative: str) -> bytes | None:
        """Current content (staged or on disk); None when there is no such regular file."""
        if relative in self._staged:
            return self._staged[relative]
        return self._on_disk(relative)

    def occupied(self, relative: str) -> bool:
        """Something (a file, or a directory on disk) already has this name."""
        if relative in self._staged:
            return self._staged[relative] is not None
        return self._on_disk(relative) is not None or self.path(relative).exists()

    def stage(self, changes: Mapping[str, bytes | None]) -> None:
        """Record new contents (None deletes) without touching the disk."""
        for relative in changes:
            self._on_disk(relative)  # remember the original before it is shadowed
        self._staged.update(changes)

    def pending(self) -> dict[str, bytes | None]:
        """Staged changes that differ from the disk, by path."""
        return {rel: data for rel, data in self._staged.items() if data != self._disk[rel]}

    def commit(self, changes: Mapping[str, bytes | None]) -> None:
        """Write ``changes`` (from :meth:`pending`): files first, then deletions.

        Raises:
            OSError: a write or delete failed; files already changed were restored first.
        """
        order = sorted(changes, key=lambda rel: (changes[rel] is None, rel))
        done: list[str] = []
        try:
            for relative in order:
                _put(self.path(relative), changes[relative])
                done.append(relative)
        except OSError:
            for relative in reversed(done):
                with contextlib.suppress(OSError):
                    _put(self.path(relative), self._disk[relative])
            raise

    def _on_disk(self, relative: str) -> bytes | None:
        if relative not in self._disk:
            target = self.path(relative)
            self._disk[relative] = target.read_bytes() if target.is_file() else None
        return self._disk[relative]


def _put(target: Path, data: bytes | None) -> None:
    """Atomically replace ``target`` with ``data``; None removes it."""
    if data is None:
        with contextlib.suppress(FileNotFoundError):
            target.unlink()
        return
    atomic_write(target, data, durable=True)
