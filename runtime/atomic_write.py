"""Replacing a file atomically: the one write-then-rename used by every workspace writer."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

NEW_FILE_MODE = 0o644  # mkstemp's 0600 would hide new files from other users


def atomic_write(target: Path, data: bytes, *, durable: bool = False) -> None:
    """Write ``data`` to ``target`` so a concurrent reader sees the old or the new file,
    never half of one.

    Writes a temp file in the same directory (created if missing) and ``os.replace``-s it
    onto ``target``. An existing regular file keeps its permission bits; a new one gets
    0644. The temp file is removed if anything fails.

    Args:
        target: the file to create or replace.
        data: its new content.
        durable: ``fsync`` the data before the rename (survives a crash, costs a disk
            flush per file).

    Raises:
        OSError: the directory or the file cannot be written.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    mode = stat.S_IMODE(target.stat().st_mode) if target.is_file() else NEW_FILE_MODE
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.chmod(temp, mode)
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
