"""A workspace: the directory on disk holding one run's working copy (contract 7.2).

Each run has its own, made from its base revision and removed when it ends
(:mod:`runtime.run_workspaces`: ``settings.runs_dir / "run" / <run_id>``). Every
path a caller names goes through :func:`runtime.paths.normalize_path` and
:func:`runtime.paths.resolve_inside`: no ``..``, no absolute paths, no symlink escapes.

All methods are blocking file I/O. Async callers run them with ``asyncio.to_thread`` so the
event loop never waits on the disk.

The revision token (``sandbox-seq-N``) is a counter kept in a sidecar file *next to* the
workspace directory (so no tool can read or forge it), incremented under an exclusive
``flock`` whenever this class changes a file. It survives restarts and is shared by every
:class:`Workspace` object (and process) pointing at the same directory.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path

from runtime.atomic_write import atomic_write
from runtime.paths import BLOCKED_PREFIXES, PathPolicyError, normalize_path, resolve_inside

# Directories never listed, snapshotted or searched at any depth: dependency caches and VCS
# metadata are not app source and can hold hundreds of thousands of files.
_SKIP_DIRS_ANYWHERE = frozenset({"node_modules", ".git", "__pycache__"})
# Kept by materialise: reinstalling dependencies after every revision sync is too slow, and
# node_modules is never part of a revision.
_KEEP_ON_MATERIALISE = "node_modules"


class WorkspaceFileNotFound(FileNotFoundError):
    """The named workspace file does not exist; ``path`` is the normalised path."""

    def __init__(self, path: str) -> None:
        super().__init__(f"File not found: {path}")
        self.path = path


class WorkspaceFileExists(FileExistsError):
    """A rename target already exists; ``path`` is the normalised path."""

    def __init__(self, path: str) -> None:
        super().__init__(f"Target file already exists: {path}")
        self.path = path


class Workspace:
    """One run's working directory with a persistent revision token.

    Args:
        root: the workspace directory (created if missing).
        sandbox_id: the id reported by tools as ``sandbox_id``.
    """

    def __init__(self, root: Path, *, sandbox_id: str | None = None) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root.resolve()
        self.sandbox_id = sandbox_id or self.root.name
        self._seq_file = self.root.parent / f".{self.root.name}.seq"

    # ---- revision token ---------------------------------------------------------------

    @property
    def revision_token(self) -> str:
        """``sandbox-seq-N``: N grows by one each time this class changes the workspace."""
        try:
            text = self._seq_file.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            text = ""
        return f"sandbox-seq-{int(text) if text.isdigit() else 0}"

    def bump(self) -> str:
        """Record a change made to the files (here or by a collaborator such as the patch
        engine) and return the new token."""
        with open(self._seq_file, "a+", encoding="ascii") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)  # released on close; serialises all bumpers
            fh.seek(0)
            text = fh.read().strip()
            seq = (int(text) if text.isdigit() else 0) + 1
            fh.seek(0)
            fh.truncate()
            fh.write(str(seq))
            fh.flush()
        return f"sandbox-seq-{seq}"

    # ---- paths --------------------------------------------------------------------------

    def resolve(self, path: str, *, check_extension: bool = True, field: str = "path") -> Path:
        """Normalise ``path`` and return its absolute location inside the workspace.

        Raises:
            PathPolicyError: the path breaks the policy or resolves outside the workspace
                (e.g. through a symlink).
        """
        rel = normalize_path(path, field=field, check_extension=check_extension)
        try:
            return resolve_inside(self.root, rel)
        except PathPolicyError as exc:
            raise PathPolicyError(exc.message, field=field) from None

    def relative(self, target: Path) -> str:
        """The workspace-relative POSIX path of an absolute ``target`` inside the root."""
        return target.relative_to(self.root).as_posix()

    # ---- reading --------------------------------------------------------------------------

    def list_files(self) -> list[str]:
        """Sorted relative paths of every regular file, skipping blocked directories
        (contract 7.5 prefixes; node_modules/.git/__pycache__ at any depth) and symlinks that
        lead outside the workspace."""
        return [rel for rel, _ in self._iter_files()]

    def read_bytes(self, path: str, *, check_extension: bool = True) -> bytes:
        """The bytes of one file.

        Raises:
            PathPolicyError: see :meth:`resolve`.
            WorkspaceFileNotFound: no such regular file.
        """
        target = self.resolve(path, check_extension=check_extension)
        if not target.is_file():
            raise WorkspaceFileNotFound(self._display(path))
        return target.read_bytes()

    def read_text(self, path: str, *, check_extension: bool = True) -> str:
        """The UTF-8 text of one file.

        Raises:
            PathPolicyError, WorkspaceFileNotFound: see :meth:`read_bytes`.
            UnicodeDecodeError: the file is not UTF-8 text.
        """
        return self.read_bytes(path, check_extension=check_extension).decode("utf-8")

    def sha256(self, path: str, *, check_extension: bool = True) -> str:
        """Hex SHA-256 of one file's bytes (errors as :meth:`read_bytes`)."""
        return hashlib.sha256(self.read_bytes(path, check_extension=check_extension)).hexdigest()

    def snapshot(self) -> dict[str, str]:
        """``{path: text}`` of every listed file that is UTF-8 text (binary and undecodable
        files are skipped: a revision's files map holds text only, contract 8)."""
        files: dict[str, str] = {}
        for rel, target in self._iter_files():
            text = decode_text(target.read_bytes())
            if text is not None:
                files[rel] = text
        return files

    def changed_since(self, files: Mapping[str, str]) -> bool:
        """Whether the workspace differs from a revision's files map (docs/design.md 8.11: no
        revision is created when nothing changed). Keys are compared after normalisation."""
        wanted = {normalize_path(p, check_extension=False): t for p, t in files.items()}
        return self.snapshot() != wanted

    # ---- writing ------------------------------------------------------------------------

    def write_text(self, path: str, content: str) -> str:
        """Create or replace one file (full path policy) and return the new token.

        Raises:
            PathPolicyError: see :meth:`resolve`.
        """
        target = self.resolve(path)
        atomic_write(target, content.encode("utf-8"))
        return self.bump()

    def delete(self, path: str) -> bool:
        """Delete one file; a missing file is not an error (contract 7.3). Returns whether a
        file was removed. The extension check is off so any existing file stays removable."""
        target = self.resolve(path, check_extension=False)
        if not target.is_file():
            return False
        target.unlink()
        self.bump()
        return True

    def rename(self, from_path: str, to_path: str) -> str:
        """Move one file and return the new token.

        Raises:
            PathPolicyError: either path breaks the policy (the target also must have an
                allowed extension).
            WorkspaceFileNotFound: the source is missing.
            WorkspaceFileExists: the target exists.
        """
        source = self.resolve(from_path, check_extension=False, field="from_path")
        target = self.resolve(to_path, field="to_path")
        if not source.is_file():
            raise WorkspaceFileNotFound(self._display(from_path))
        if target.exists():
            raise WorkspaceFileExists(self._display(to_path))
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)
        return self.bump()

    def materialise(self, files: Mapping[str, str]) -> bool:
        """Make the workspace hold exactly ``files`` (a revision's ``{path: text}``).

        Every other file and directory is removed except ``node_modules/``; files whose
        content is already right are not rewritten (dev servers watch mtimes). Every path is
        validated before anything on disk changes. Returns whether anything changed (the
        token is bumped if so).

        Raises:
            PathPolicyError: a path in ``files`` breaks the policy (nothing is changed).
        """
        wanted = {normalize_path(p, check_extension=False): t for p, t in files.items()}
        changed = self._remove_unwanted(set(wanted))
        for rel, text in sorted(wanted.items()):
            target = resolve_inside(self.root, rel)
            data = text.encode("utf-8")
            if target.is_file() and not target.is_symlink() and target.read_bytes() == data:
                continue
            if target.is_dir():
                shutil.rmtree(target)
            atomic_write(target, data)
            changed = True
        if changed:
            self.bump()
        return changed

    # ---- internals ----------------------------------------------------------------------

    def _display(self, path: str) -> str:
        try:
            return normalize_path(path, check_extension=False)
        except PathPolicyError:
            return path

    def _iter_files(self) -> Iterator[tuple[str, Path]]:
        found: list[tuple[str, Path]] = []
        for dirpath, dirnames, filenames in os.walk(self.root, followlinks=False):
            current = Path(dirpath)
            top = current == self.root
            dirnames[:] = [
                d
                for d in dirnames
                if d not in _SKIP_DIRS_ANYWHERE
                and not (top and d in BLOCKED_PREFIXES)
                and not (current / d).is_symlink()  # never follow: it may lead outside
            ]
            for name in filenames:
                full = current / name
                rel = full.relative_to(self.root).as_posix()
                try:
                    normalize_path(rel, check_extension=False)
                    if full.is_symlink():
                        resolve_inside(self.root, rel)
                except PathPolicyError:
                    continue
                if full.is_file():
                    found.append((rel, full))
        found.sort(key=lambda item: item[0])
        yield from found

    def _remove_unwanted(self, wanted: set[str]) -> bool:
        wanted_dirs = {
            "/".join(w.split("/")[:i]) for w in wanted for i in range(1, w.count("/") + 1)
        }
        changed = False
        for dirpath, dirnames, filenames in os.walk(self.root, topdown=True, followlinks=False):
            current = Path(dirpath)
            keep_dirs = []
            for d in dirnames:
                full = current / d
                if current == self.root and d == _KEEP_ON_MATERIALISE:
                    continue
                if full.is_symlink():
                    full.unlink()
                    changed = True
                elif self.relative(full) not in wanted_dirs:
                    shutil.rmtree(full)
                    changed = True
                else:
                    keep_dirs.append(d)
            dirnames[:] = keep_dirs
            for name in filenames:
                full = current / name
                if full.is_symlink() or self.relative(full) not in wanted:
                    full.unlink()
                    changed = True
        return changed


def decode_text(data: bytes) -> str | None:
    """UTF-8 text of ``data``, or None for binary (a NUL byte) or undecodable content."""
    if b"\x00" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None
