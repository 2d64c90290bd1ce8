"""An app's npm dependencies: installed once per manifest, outside the run's sandbox, into a
shared cache that sandboxes mount read-only (issue 9 item 1).

The manifest is untrusted (a model edits ``package.json``), so only what an install needs
is taken from it: the four dependency maps and ``overrides``, each spec a registry
version, range, tag or ``npm:`` alias (no ``file:``, ``git``, URL, GitHub or workspace
specs), and a ``package-lock.json`` whose every ``resolved`` URL is on the configured
registry. ``scripts`` never reach the installer. The key is the SHA-256 of that derived
manifest, the lockfile and the registry, so editing ``scripts.build`` reuses the install.

The install itself runs in its own bwrap sandbox (policy of :mod:`.policy`, network
shared: the registry is the only host it is told about) with ``--ignore-scripts``, a time
limit (``deps_install_timeout_seconds``) and a size cap checked before the result is
published (``deps_max_bytes``). It builds in a staging directory and is published by one
``rename``, under an exclusive ``flock`` per key, so concurrent runs (in any process) for
the same manifest install once and nobody ever sees a half-written tree.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import stat
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from runtime.processes import run_capped
from runtime.sandbox.policy import Policy, Tools, bwrap_argv, sandbox_env
from runtime.settings import Settings

MANIFEST = "package.json"
"""The app manifest, read from the workspace root."""
LOCKFILE = "package-lock.json"
"""The npm lockfile, honoured when present (the chat-classic template ships one)."""
_DEP_FIELDS = ("dependencies", "devDependencies", "optionalDependencies", "peerDependencies")
_MAX_MANIFEST_BYTES = 256 * 1024
_MAX_LOCK_BYTES = 8 * 1024 * 1024
_MAX_DEPENDENCIES = 500
_NAME = re.compile(r"^(@[a-z0-9][a-z0-9._~-]*/)?[a-z0-9][a-z0-9._~-]{0,213}$", re.I)
# A registry version, range or dist-tag: digits, letters, dots, x/*, comparators, hyphen
# ranges, "||". No ":", "/", "#" or "@", so no file:, git, URL or user/repo spec passes.
_RANGE = re.compile(r"^[A-Za-z0-9.^~<>=|*+\- ]{0,200}$")
_OUTPUT_CAP = 16000
_INSTALLS: set[asyncio.Task[None]] = set()  # strong references to installs in flight


class DependencyError(Exception):
    """The app's dependencies were refused or could not be installed; the message is safe
    to show to the model (no host path)."""


@dataclass(frozen=True, slots=True)
class Manifest:
    """What an install is made from.

    Attributes:
        key: hex SHA-256 naming the install in the cache.
        package_json: the derived manifest written for npm (dependency fields only).
        lockfile: the app's ``package-lock.json`` bytes, or None.
    """

    key: str
    package_json: bytes
    lockfile: bytes | None


def read_manifest(workspace: Path, registry: str) -> Manifest | None:
    """The install manifest of the app in ``workspace``, or None when it declares no
    dependency (no ``package.json``, or empty dependency maps). Blocking file I/O.

    Raises:
        DependencyError: the manifest or lockfile is unreadable, too large, or names
            anything but registry packages.
    """
    data = _read_regular(workspace / MANIFEST, _MAX_MANIFEST_BYTES)
    if data is None:
        return None
    try:
        doc = json.loads(data)
    except ValueError:
        raise DependencyError("package.json is not valid JSON") from None
    if not isinstance(doc, dict):
        raise DependencyError("package.json must hold a JSON object")
    if "workspaces" in doc or "bundleDependencies" in doc or "bundledDependencies" in doc:
        raise DependencyError("npm workspaces and bundled dependencies are not supported")
    derived: dict[str, Any] = {"name": "app", "version": "0.0.0", "private": True}
    count = 0
    for field in _DEP_FIELDS:
        deps = doc.get(field)
        if deps is None:
            continue
        if not isinstance(deps, dict):
            raise DependencyError(f"package.json {field} must be an object")
        for name, spec in deps.items():
            _check_dependency(name, spec, field)
        count += len(deps)
        if deps:
            derived[field] = dict(sorted(deps.items()))
    if count > _MAX_DEPENDENCIES:
        raise DependencyError(f"package.json declares more than {_MAX_DEPENDENCIES} dependencies")
    if "overrides" in doc:
        _check_overrides(doc["overrides"], depth=0)
        derived["overrides"] = doc["overrides"]
    if count == 0:
        return None
    package_json = json.dumps(derived, sort_keys=True, indent=2).encode() + b"\n"
    lockfile = _read_regular(workspace / LOCKFILE, _MAX_LOCK_BYTES)
    if lockfile is not None:
        _check_lockfile(lockfile, registry)
    digest = hashlib.sha256()
    for part in (registry.encode(), package_json, lockfile or b""):
        digest.update(hashlib.sha256(part).digest())
    return Manifest(digest.hexdigest(), package_json, lockfile)


def _read_regular(path: Path, cap: int) -> bytes | None:
    # O_NOFOLLOW: a symlink planted by a sandboxed command must not make the server read
    # a file outside the workspace.
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError:
        raise DependencyError(f"{path.name} cannot be read (it must be a regular file)") from None
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise DependencyError(f"{path.name} must be a regular file")
        data = fh.read(cap + 1)
    if len(data) > cap:
        raise DependencyError(f"{path.name} is larger than {cap} bytes")
    return data


def _check_dependency(name: object, spec: object, field: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise DependencyError(f"package.json {field}: invalid package name {name!r:.80}")
    if not isinstance(spec, str):
        raise DependencyError(f"package.json {field}.{name}: the version must be a string")
    target = spec
    if spec.startswith("npm:"):  # alias: npm:<name>@<range>
        alias = spec[4:]
        at = alias.rfind("@")
        alias_name, target = (alias[:at], alias[at + 1 :]) if at > 0 else (alias, "")
        if not _NAME.match(alias_name):
            raise DependencyError(f"package.json {field}.{name}: invalid npm alias")
    if not _RANGE.match(target):
        raise DependencyError(
            f"package.json {field}.{name}: only registry versions are installed "
            f"(no file:, git, URL or GitHub specs), got {spec!r:.80}"
        )


def _check_overrides(value: object, *, depth: int) -> None:
    if depth > 8:
        raise DependencyError("package.json overrides are nested too deeply")
    if isinstance(value, str):
        if value.startswith("$"):
            value = value[1:]  # "$react": use the version of a direct dependency
            if not _NAME.match(value):
                raise DependencyError("package.json overrides: invalid reference")
            return
        _check_dependency("override", value, "overrides")
        return
    if not isinstance(value, dict):
        raise DependencyError("package.json overrides must map names to versions")
    for key, inner in value.items():
        if key != "." and not _NAME.match(key.rsplit("@", 1)[0] if "@" in key[1:] else key):
            raise DependencyError("package.json overrides: invalid package name")
        _check_overrides(inner, depth=depth + 1)


def _check_lockfile(data: bytes, registry: str) -> None:
    try:
        doc = json.loads(data)
    except ValueError:
        raise DependencyError("package-lock.json is not valid JSON") from None
    packages = doc.get("packages") if isinstance(doc, dict) else None
    if not isinstance(packages, dict):  # lockfileVersion 1 has no "packages" map
        raise DependencyError("package-lock.json must be lockfileVersion 2 or 3")
    for path, entry in packages.items():
        if not path:
            continue  # the root project itself
        if not isinstance(entry, dict) or not path.startswith("node_modules/"):
            raise DependencyError("package-lock.json has a malformed package entry")
        if entry.get("link") or not _RANGE.match(str(entry.get("version", ""))):
            raise DependencyError(f"package-lock.json: {path[:120]} is not a registry package")
        # Without "resolved" npm fetches the locked version from the configured registry.
        resolved = entry.get("resolved")
        if resolved is not None and not (
            isinstance(resolved, str) and resolved.startswith(registry)
        ):
            raise DependencyError(
                f"package-lock.json: {path[:120]} does not resolve to the registry {registry}"
            )


class DependencyCache:
    """Installs and finds app dependencies under ``settings.deps_dir``.

    Stateless apart from the files: build one wherever needed (concurrent installs are
    serialised by file locks, which work across objects and processes).

    Args:
        settings: ``deps_*`` and ``sandbox_*`` settings.
        tools: the sandbox programs (found on ``PATH`` by the caller).
    """

    def __init__(self, settings: Settings, tools: Tools) -> None:
        self.root = settings.deps_dir
        self.registry = settings.deps_registry
        self.timeout = settings.deps_install_timeout_seconds
        self.max_bytes = settings.deps_max_bytes
        self.policy = Policy.from_settings(settings)
        self.tools = tools

    async def ensure(self, workspace: Path) -> Path | None:
        """The ``node_modules`` directory for the app in ``workspace``: from the cache, or
        installed now. None when the app declares no dependency.

        Raises:
            DependencyError: the manifest was refused, or the install failed, timed out
                or grew past ``deps_max_bytes`` (nothing is cached then).
        """
        manifest = await asyncio.to_thread(read_manifest, workspace, self.registry)
        if manifest is None:
            return None
        final = self.root / manifest.key / "node_modules"
        if await asyncio.to_thread(final.is_dir):
            return final
        # The install outlives a caller that gives up (a tool timeout, a cancelled run):
        # the next command of any run with this manifest then finds it done.
        task = asyncio.ensure_future(self._install_once(manifest, final))
        _INSTALLS.add(task)
        task.add_done_callback(_INSTALLS.discard)
        await asyncio.shield(task)
        return final

    async def _install_once(self, manifest: Manifest, final: Path) -> None:
        await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True)
        lock = await _locked(self.root / f"{manifest.key}.lock")
        try:
            if not await asyncio.to_thread(final.is_dir):  # another holder installed it
                await self._install(manifest)
        finally:
            lock.close()  # releases the flock

    async def _install(self, manifest: Manifest) -> None:
        staging = self.root / f".staging-{manifest.key[:16]}-{uuid.uuid4().hex[:8]}"
        try:
            await asyncio.to_thread(self._stage, staging, manifest)
            registry_env = {"npm_config_registry": self.registry}
            argv = bwrap_argv(
                self.policy,
                self.tools,
                ["npm", "install", "--ignore-scripts", "--no-audit", "--no-fund",
                 "--no-update-notifier", "--loglevel=error"],
                workspace=staging,
                env=sandbox_env(registry_env),
                network=True,
            )  # fmt: skip
            result = await run_capped(
                argv, cwd=staging, env={}, time_limit=self.timeout,
                max_output_bytes=_OUTPUT_CAP, display="bwrap",
            )  # fmt: skip
            if result.code != 0:
                tail = (result.stderr or result.stdout).strip()[-2000:]
                raise DependencyError(f"npm install failed (exit {result.code}): {tail}")
            size = await asyncio.to_thread(_tree_bytes, staging / "node_modules")
            if size > self.max_bytes:
                raise DependencyError(
                    f"the installed dependencies take {size} bytes, more than the "
                    f"{self.max_bytes} allowed"
                )
            await asyncio.to_thread(os.rename, staging, self.root / manifest.key)
        finally:
            await asyncio.to_thread(shutil.rmtree, staging, True)

    def _stage(self, staging: Path, manifest: Manifest) -> None:
        staging.mkdir(mode=0o755)
        (staging / MANIFEST).write_bytes(manifest.package_json)
        if manifest.lockfile is not None:
            (staging / LOCKFILE).write_bytes(manifest.lockfile)
        if os.geteuid() == 0:  # the installer runs as the sandbox uid
            for path in (staging, staging / MANIFEST, staging / LOCKFILE):
                with contextlib.suppress(FileNotFoundError):
                    os.lchown(path, self.policy.uid, self.policy.gid)


async def _locked(path: Path) -> IO[bytes]:
    """An open file holding an exclusive flock on ``path`` (close it to release).

    The blocking flock runs in a worker thread; if the caller is cancelled while waiting,
    the lock is released as soon as the thread gets it.
    """

    def acquire() -> IO[bytes]:
        fh = open(path, "ab")  # noqa: SIM115 - returned to the caller, closed there
        try:
            fcntl.flock(fh, fcntl.LOCK_EX)
        except BaseException:
            fh.close()
            raise
        return fh

    task = asyncio.ensure_future(asyncio.to_thread(acquire))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        task.add_done_callback(lambda t: t.cancelled() or t.exception() or t.result().close())
        raise


def _tree_bytes(root: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(root, followlinks=False):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total
