"""Test helpers for the command sandbox: skip when bubblewrap is missing, and one shared
dependency cache so chat-classic's npm install happens once per machine, not per test."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

BWRAP_MISSING = None if shutil.which("bwrap") else "bubblewrap (bwrap) is not installed"

needs_bwrap = pytest.mark.skipif(
    BWRAP_MISSING is not None, reason=f"{BWRAP_MISSING}: apt-get install bubblewrap"
)
"""Mark a test (or module) that runs commands in the real bwrap sandbox."""


def shared_deps_dir() -> Path:
    """The dependency cache every test shares (``RUNWRIGHT_TEST_DEPS_DIR`` or
    ``~/.cache/runwright-test-deps``): entries are keyed by manifest hash, so sharing is
    safe, and concurrent sessions install a manifest once (file locks)."""
    configured = os.environ.get("RUNWRIGHT_TEST_DEPS_DIR")
    return Path(configured) if configured else Path.home() / ".cache" / "runwright-test-deps"


def host_processes(marker: bytes, *, program: bytes = b"") -> list[int]:
    """Host pids whose command line contains ``marker`` and starts with ``program``
    (zombies excluded; bwrap's own command line holds the sandboxed command too, so pass
    the program to count only the command's processes)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if marker in cmdline and cmdline.startswith(program) and state != "Z":
            found.append(int(pid))
    return found
