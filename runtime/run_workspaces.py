"""Run workspaces: one private directory per run, made from its base revision.

Every run of an engine with a workspace works in ``<runs_dir>/run/<run_id>``, a copy of
its base revision's files made when it starts (an attempt whose workspace is made again
after a restart: of its last checkpoint's, ``runtime.checkpoints.workspace_origin``),
removed when it ends. Runs of one app
therefore execute in parallel, and a sandboxed command (which mounts only its run's
directory) sees no other run's files. At auto-apply the run's changes are merged onto the
app's current draft (:mod:`runtime.merge`).

The per-revision cache. Revisions are immutable, so the files of a base revision are
written once to ``<runs_dir>/revisions/<revision_id>`` and every run on that revision
copies them from there (no database read, no re-encoding). The cache holds at most
``workspace_cache_revisions`` revisions; the least recently used go first. An evicted entry
is first renamed away (atomically) and only then deleted, and a copy counts only if its
source entry was still in place when the copy ended: a run copying an entry that another
thread or worker process evicts meanwhile never gets a workspace with files missing (it
falls back to the revision's files, read from the database). Before this, deleting an
entry in place raced with copies of it: a copy could silently lack a directory, and the
run's auto-apply then saw files "deleted" (docs/benchmarks.md, "Issue 11").

Why copies and not hard links: a hard link shares the file's inode, and writers that open
a file in place would change the cache, and with it every later run: the sandbox
re-owns the workspace to its uid before each command (``lchown`` of a link re-owns the
shared inode) and the command may then write in place; the OpenCode server edits files in
place as the server's user, whom file modes do not stop. A copy shares nothing. Where the
file system supports it, the copy is a reflink (``FICLONE``: copy-on-write, no data
copied); elsewhere (ext4) a kernel-side copy, cheap for apps of a few MiB (contract 8
caps a revision at 2 MiB).

All methods are blocking file I/O: async callers use ``asyncio.to_thread``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import shutil
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path

from runtime.atomic_write import atomic_write
from runtime.paths import normalize_path, resolve_inside

# linux/fs.h: _IOW(0x94, 9, int). Shares the source's extents (copy-on-write).
_FICLONE = 0x40049409
_NO_REFLINK = frozenset({errno.EOPNOTSUPP, errno.ENOTTY, errno.EXDEV, errno.EINVAL, errno.ENOSYS})
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
RUNS = "run"
REVISIONS = "revisions"
_STAGING = ".new-"  # a directory being written, renamed into place when complete
_EVICTED = ".old-"  # a cache entry renamed away, being deleted


class RevisionNotCached(LookupError):
    """The base revision's files are not in the cache (evicted meanwhile): pass them."""


class RunWorkspaces:
    """The run workspaces and revision cache under one directory.

    Args:
        root: ``settings.runs_dir``.
        cache_revisions: revisions kept in the cache (>= 1).
    """

    def __init__(self, root: Path, *, cache_revisions: int) -> None:
        self.root = root
        self.runs = root / RUNS
        self.cache = root / REVISIONS
        self.cache_revisions = max(1, cache_revisions)

    # ---- paths ----------------------------------------------------------------------------

    def path(self, run_id: uuid.UUID) -> Path:
        """Where ``run_id``'s workspace lives (whether or not it exists yet)."""
        return self.runs / str(run_id)

    def exists(self, run_id: uuid.UUID) -> bool:
        """Whether ``run_id`` has a workspace on this machine."""
        return self.path(run_id).is_dir()

    def cached(self, revision_id: uuid.UUID) -> bool:
        """Whether ``revision_id``'s files are in the cache."""
        return (self.cache / str(revision_id)).is_dir()

    # ---- making and removing ----------------------------------------------------------------

    def create(
        self,
        run_id: uuid.UUID,
        revision_id: uuid.UUID | None,
        files: Mapping[str, str] | None = None,
    ) -> Path:
        """(Re)make ``run_id``'s workspace holding exactly ``revision_id``'s files.

        Args:
            run_id: the run.
            revision_id: the revision to start from (None: an empty workspace).
            files: that revision's ``{path: text}``, needed when it is not cached yet (it
                is then added to the cache).

        Returns:
            The workspace directory.

        Raises:
            RevisionNotCached: ``files`` is None and the revision is not cached.
            PathPolicyError: a path in ``files`` breaks the policy (nothing is made).
        """
        self.runs.mkdir(parents=True, exist_ok=True)
        target = self.path(run_id)
        staging = self.runs / f"{_STAGING}{run_id}-{uuid.uuid4().hex[:8]}"
        try:
            if revision_id is None:
                staging.mkdir()
            else:
                source = self._cache_entry(revision_id, files)
                if not _copy_intact(source, staging):  # evicted while we copied
                    if files is None:
                        raise RevisionNotCached(str(revision_id))
                    shutil.rmtree(staging, ignore_errors=True)
                    _write_tree(staging, files)
            self.remove(run_id)
            os.rename(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return target

    def remove(self, run_id: uuid.UUID) -> None:
        """Delete ``run_id``'s workspace and its revision-token file (missing: no-op)."""
        shutil.rmtree(self.path(run_id), ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            (self.runs / f".{run_id}.seq").unlink()

    def listed_runs(self) -> list[uuid.UUID]:
        """The runs that have a workspace here."""
        if not self.runs.is_dir():
            return []
        return [uuid.UUID(name) for name in os.listdir(self.runs) if _UUID.match(name)]

    def sweep(self, keep: Iterable[uuid.UUID]) -> list[uuid.UUID]:
        """Start-up cleanup: remove every run workspace not in ``keep`` (runs that are not
        live any more), left-over staging directories and token files, and the
        per-(app, user) workspaces of earlier versions. Returns the runs removed."""
        keep_names = {str(run_id) for run_id in keep}
        removed = []
        for run_id in self.listed_runs():
            if str(run_id) not in keep_names:
                self.remove(run_id)
                removed.append(run_id)
        if self.runs.is_dir():
            for name in os.listdir(self.runs):
                stem = name.removeprefix(".").removesuffix(".seq")
                if name.startswith(_STAGING) or (name.endswith(".seq") and stem not in keep_names):
                    _remove_path(self.runs / name)
        if self.cache.is_dir():  # what a process that died while caching left behind
            for name in os.listdir(self.cache):
                if name.startswith((_STAGING, _EVICTED)):
                    _remove_path(self.cache / name)
        if self.root.is_dir():
            for name in os.listdir(self.root):
                if _UUID.match(name):  # <runs_dir>/<app_id>/<user_id>: the old layout
                    _remove_path(self.root / name)
        return removed

    # ---- the revision cache -------------------------------------------------------------------

    def _cache_entry(self, revision_id: uuid.UUID, files: Mapping[str, str] | None) -> Path:
        entry = self.cache / str(revision_id)
        if entry.is_dir():
            with contextlib.suppress(FileNotFoundError):
                os.utime(entry)  # most recently used
            return entry
        if files is None:
            raise RevisionNotCached(str(revision_id))
        self.cache.mkdir(parents=True, exist_ok=True)
        staging = self.cache / f"{_STAGING}{revision_id}-{uuid.uuid4().hex[:8]}"
        try:
            _write_tree(staging, files)
            try:
                os.rename(staging, entry)
            except OSError as exc:  # another run cached it first: theirs is the same
                if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self._evict(keep=entry)
        return entry

    def _evict(self, *, keep: Path) -> None:
        """Drop the least recently used revisions beyond ``cache_revisions``.

        Only complete entries count (another thread's staging directory is not touched).
        Each is renamed away before it is deleted, so a concurrent copy of it fails as a
        whole instead of missing files (:func:`_copy_intact`)."""
        entries = []
        for name in os.listdir(self.cache):
            if not _UUID.match(name):
                continue
            path = self.cache / name
            try:
                entries.append((path.stat().st_mtime, path))
            except FileNotFoundError:
                continue
        entries.sort(reverse=True)
        for _, path in entries[self.cache_revisions :]:
            if path == keep:
                continue
            trash = self.cache / f"{_EVICTED}{path.name}-{uuid.uuid4().hex[:8]}"
            try:
                os.rename(path, trash)
            except FileNotFoundError:  # another thread or worker evicted it first
                continue
            shutil.rmtree(trash, ignore_errors=True)


def _write_tree(root: Path, files: Mapping[str, str]) -> None:
    """Write ``files`` under a new directory ``root`` (every path checked first)."""
    checked = sorted((normalize_path(p, check_extension=False), t) for p, t in files.items())
    root.mkdir(parents=True)
    for rel, text in checked:
        atomic_write(resolve_inside(root, rel), text.encode("utf-8"))


def _copy_tree(source: Path, target: Path) -> None:
    """Copy the regular files and directories of ``source`` to a new ``target``; each file
    is a reflink where the file system can, else a kernel-side copy. Never a hard link."""
    shutil.copytree(source, target, symlinks=True, copy_function=_clone_file)


def _copy_intact(entry: Path, target: Path) -> bool:
    """Copy cache ``entry`` to a new ``target``; False when the entry was evicted before or
    during the copy (``target`` may then be partial: the caller discards it).

    An evicted entry is renamed away before anything in it is deleted, so while the copy
    reads paths under ``entry`` either they are all there or they fail; an entry in place
    after the copy was not renamed during it (or was cached again, complete, meanwhile)."""
    try:
        _copy_tree(entry, target)
    except (FileNotFoundError, shutil.Error):  # shutil.Error: per-file failures, collected
        return False
    return entry.is_dir()


def _clone_file(src: str, dst: str) -> str:
    with open(src, "rb") as fin, open(dst, "xb") as fout:
        try:
            fcntl.ioctl(fout.fileno(), _FICLONE, fin.fileno())
        except OSError as exc:
            if exc.errno not in _NO_REFLINK:
                raise
            shutil.copyfileobj(fin, fout, 1 << 20)
    return dst


def _remove_path(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
