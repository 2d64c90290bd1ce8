"""Running one agent command in a workspace under the sandbox policy.

:class:`Sandbox` is what the command tools call: it finds bwrap (failing closed when it is
missing), makes sure the app's dependencies are installed (:mod:`.deps`), prepares the
workspace for the sandbox uid, builds the argv (:mod:`.policy`) and runs it bounded
(:func:`runtime.processes.run_capped`). With ``RUNWRIGHT_SANDBOX=none`` it runs the
command directly in the workspace with a minimal environment, as a development escape
hatch that :func:`announce` warns about at start.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from runtime.processes import CommandResult, run_capped
from runtime.sandbox.deps import DependencyCache
from runtime.sandbox.policy import Policy, SandboxUnavailable, Tools, bwrap_argv
from runtime.settings import Settings

log = logging.getLogger(__name__)

# Unsandboxed mode only: what a command inherits from the server's environment.
_ENV_PASSTHROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "NODE_OPTIONS")


class Sandbox:
    """Runs commands for one settings object (stateless; build one wherever needed).

    Args:
        settings: ``sandbox``, ``sandbox_*`` and ``deps_*`` settings.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.enabled = settings.sandbox == "bwrap"

    async def run(
        self,
        command: Sequence[str],
        workspace: Path,
        *,
        time_limit: float,
        max_output_bytes: int,
    ) -> CommandResult:
        """Run ``command`` with ``workspace`` as its working directory.

        Args:
            command: program and arguments (already allowlisted by the caller).
            workspace: the run's workspace on the host.
            time_limit: seconds before the whole tree is killed (code 124).
            max_output_bytes: cap on each of stdout and stderr.

        Raises:
            SandboxUnavailable: bwrap, prlimit or setpriv is missing (fail closed).
            DependencyError: the app's dependencies were refused or failed to install.
        """
        if not self.enabled:
            env = {k: os.environ[k] for k in _ENV_PASSTHROUGH if k in os.environ}
            env.update({"CI": "1", "NO_COLOR": "1"})
            return await run_capped(
                command, cwd=workspace, env=env, time_limit=time_limit,
                max_output_bytes=max_output_bytes,
            )  # fmt: skip
        tools = Tools.find()
        deps = await DependencyCache(self.settings, tools).ensure(workspace)
        policy = Policy.from_settings(self.settings)
        privileged = os.geteuid() == 0
        await asyncio.to_thread(prepare_workspace, workspace, policy, privileged=privileged)
        argv = bwrap_argv(policy, tools, command, workspace=workspace, deps=deps)
        return await run_capped(
            argv, cwd=Path("/"), env={}, time_limit=time_limit,
            max_output_bytes=max_output_bytes, display=command[0],
        )  # fmt: skip


def prepare_workspace(root: Path, policy: Policy, *, privileged: bool) -> None:
    """Make ``root`` ready for a sandboxed command (blocking).

    - A top-level ``node_modules`` is removed: dependencies come read-only from the shared
      cache (mounted on the workspace's parent), and a local one (or a symlink planted
      there) would shadow them.
    - In privileged mode every entry is re-owned (``lchown``, symlinks never followed) by
      the sandbox uid, which is not root and could not write otherwise.
    """
    local = root / "node_modules"
    if local.is_symlink() or local.is_file():
        local.unlink()
    elif local.is_dir():
        shutil.rmtree(local)
    if not privileged:
        return
    uid, gid = policy.uid, policy.gid
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        st = os.lstat(dirpath)
        if (st.st_uid, st.st_gid) != (uid, gid):
            os.lchown(dirpath, uid, gid)
        for name in (*dirnames, *filenames):
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if (st.st_uid, st.st_gid) != (uid, gid):
                os.lchown(path, uid, gid)


def announce(settings: Settings) -> None:
    """Log at start how agent commands will run: a warning when unsandboxed, an error when
    bwrap is missing (command tools then fail closed)."""
    if settings.sandbox == "none":
        log.warning(
            "RUNWRIGHT_SANDBOX=none: agent commands (npm scripts a model can edit, "
            "OpenCode's bash) run UNSANDBOXED with this server's user and file system"
        )
        return
    try:
        Tools.find()
    except SandboxUnavailable as exc:
        log.error("agent command tools will fail: %s", exc)
        return
    log.info("agent commands run under bubblewrap (network %s)",
             "shared" if settings.sandbox_network else "off")  # fmt: skip
