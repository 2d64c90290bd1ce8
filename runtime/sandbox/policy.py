"""The sandbox policy: the one place that says what a sandboxed command may see and do.

Every command an agent can start (the npm check tools, allowlisted commands, OpenCode's
bash tool) and every dependency install runs under bubblewrap with the argv built here
(issue 9 item 1; docs/security.md "Command sandbox" states the same policy in prose).

What a command gets:

- Its own mount, PID, IPC, UTS (and cgroup, when the kernel allows) namespaces; its own
  network namespace (loopback only) unless the operator sets ``sandbox_network``.
- A fresh root: a tmpfs holding only ``/usr`` (and the merged-usr links ``/bin``, ``/lib``,
  ...) and the few ``/etc`` files the dynamic linker needs, read-only; the node install
  when it lives outside ``/usr``, read-only; a fresh ``/proc`` of its PID namespace; a
  minimal ``/dev``; a size-capped tmpfs ``/tmp`` (also ``HOME``).
- The run's workspace read-write at :data:`WORKSPACE_DIR`, and the app's installed
  dependencies read-only at :data:`DEPS_DIR` (its parent, so Node's module resolution and
  ``npm run``'s ``PATH`` find them). No data directory, no other workspace, no home
  directory, no server secret: nothing else of the host file system is mounted.
- An environment made only of :func:`sandbox_env` (bwrap itself starts with an empty
  environment, so PID 1's ``/proc/1/environ`` holds nothing of the server's).
- An unprivileged uid/gid. When the server runs as root, bwrap runs in its privileged mode
  (no user namespace) and the command is started through ``setpriv`` as the real host
  uid ``sandbox_uid`` with every capability dropped and ``no_new_privs`` set, so the
  process-count limit is enforced and nothing in the sandbox is root on the host. When
  the server is not root, bwrap maps ``sandbox_uid`` in a new user namespace instead (the
  host uid is then the server's own; see docs/security.md).
- Resource limits set by ``prlimit`` before bwrap starts: CPU seconds, address space,
  processes (privileged mode), file size, open files, no core dumps.
- ``--die-with-parent`` (the tree dies with the server) and ``--new-session`` (no terminal
  injection). Killing bwrap kills the PID namespace's init and so every process in it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from runtime.settings import Settings

WORKSPACE_DIR = "/work/app"
"""Where the run's workspace appears inside the sandbox (read-write)."""
DEPS_DIR = "/work/node_modules"
"""Where the app's installed dependencies appear (read-only)."""
HOME_DIR = "/tmp/home"
SANDBOX_PATH = "/usr/local/bin:/usr/bin:/bin"

# Host paths mounted read-only when present. /usr holds node, npm, sh and coreutils on
# Debian; the /etc entries are what the dynamic linker and Debian's alternatives need.
_SYSTEM_DIRS = ("/usr",)
_ROOT_LINKS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
_ETC_FILES = (
    "/etc/alternatives",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/ssl/openssl.cnf",
    "/etc/ssl/certs",
)
# Name resolution, only when the network is shared (the dependency installer).
_NET_ETC_FILES = ("/etc/resolv.conf", "/etc/hosts", "/etc/nsswitch.conf", "/etc/gai.conf")
# Capabilities bwrap keeps (privileged mode only) so that setpriv can switch to the
# sandbox uid; setpriv then clears them all before it runs the command.
_SETPRIV_CAPS = ("CAP_SETUID", "CAP_SETGID")
_MAX_OPEN_FILES = 4096


class SandboxUnavailable(Exception):
    """bubblewrap (or a helper it needs) is missing: sandboxed commands cannot run."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-process resource limits (``setrlimit``), applied to every sandboxed process.

    Attributes:
        cpu_seconds: ``RLIMIT_CPU``, CPU time per process, seconds.
        memory_bytes: ``RLIMIT_DATA``, writable private memory per process, bytes (not
            ``RLIMIT_AS``: V8 reserves far more address space than it uses).
        processes: ``RLIMIT_NPROC``, processes of the sandbox uid (privileged mode).
        file_bytes: ``RLIMIT_FSIZE``, largest file a process may write, bytes.
        tmp_bytes: size of the sandbox's ``/tmp`` tmpfs, bytes.
    """

    cpu_seconds: int
    memory_bytes: int
    processes: int
    file_bytes: int
    tmp_bytes: int


@dataclass(frozen=True, slots=True)
class Policy:
    """The sandbox settings of one process (built from :class:`Settings`).

    Attributes:
        uid: host uid (privileged mode) or in-namespace uid the command runs as.
        gid: its gid.
        network: share the host network namespace (``sandbox_network``).
        limits: resource limits.
        extra_ro: host directories mounted read-only at the same path (the node install
            when it lives outside ``/usr``).
    """

    uid: int
    gid: int
    network: bool
    limits: Limits
    extra_ro: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        """The policy the settings describe (``sandbox_*``)."""
        return cls(
            uid=settings.sandbox_uid,
            gid=settings.sandbox_gid,
            network=settings.sandbox_network,
            limits=Limits(
                cpu_seconds=settings.sandbox_cpu_seconds,
                memory_bytes=settings.sandbox_memory_bytes,
                processes=settings.sandbox_max_processes,
                file_bytes=settings.sandbox_max_file_bytes,
                tmp_bytes=settings.sandbox_tmp_bytes,
            ),
            extra_ro=node_install_dirs(),
        )


@dataclass(frozen=True, slots=True)
class Tools:
    """Absolute paths of the host programs that build the sandbox."""

    bwrap: str
    prlimit: str
    setpriv: str

    @classmethod
    def find(cls) -> Tools:
        """Locate ``bwrap``, ``prlimit`` and ``setpriv`` (util-linux) on ``PATH``.

        Raises:
            SandboxUnavailable: one is missing; the message says how to install it.
        """
        bwrap = shutil.which("bwrap")
        if bwrap is None:
            raise SandboxUnavailable(
                "bubblewrap is not installed: agent commands run only inside a bwrap "
                "sandbox. Install it (Debian/Ubuntu: apt-get install bubblewrap), or set "
                "RUNWRIGHT_SANDBOX=none to run them unsandboxed (unsafe)."
            )
        prlimit, setpriv = shutil.which("prlimit"), shutil.which("setpriv")
        if prlimit is None or setpriv is None:
            raise SandboxUnavailable(
                "prlimit and setpriv (Debian package util-linux) are needed to sandbox "
                "agent commands"
            )
        return cls(bwrap=bwrap, prlimit=prlimit, setpriv=setpriv)


def node_install_dirs() -> tuple[str, ...]:
    """The install prefix of the ``node`` on ``PATH`` when it is outside ``/usr``
    (e.g. ``/opt/node``), so that sandboxes can run it; ``()`` otherwise."""
    node = shutil.which("node")
    if node is None:
        return ()
    prefix = Path(os.path.realpath(node)).parent.parent
    if prefix == Path("/") or prefix.is_relative_to("/usr"):
        return ()
    return (str(prefix),)


def sandbox_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The whole environment of a sandboxed command (nothing is inherited).

    ``extra`` (e.g. npm settings of the dependency installer) is added last.
    """
    env = {
        "PATH": SANDBOX_PATH,
        "HOME": HOME_DIR,
        "TMPDIR": "/tmp",
        "LANG": "C.UTF-8",
        "CI": "1",
        "NO_COLOR": "1",
        "npm_config_cache": f"{HOME_DIR}/.npm",
        "npm_config_update_notifier": "false",
        "npm_config_fund": "false",
        "npm_config_audit": "false",
    }
    env.update(extra or {})
    return env


def bwrap_argv(
    policy: Policy,
    tools: Tools,
    command: Sequence[str],
    *,
    workspace: Path,
    deps: Path | None = None,
    env: Mapping[str, str] | None = None,
    privileged: bool | None = None,
    network: bool | None = None,
    subdir: str = "",
) -> list[str]:
    """The full argv that runs ``command`` in a sandbox around ``workspace``.

    Args:
        policy: the process's sandbox policy.
        tools: where bwrap, prlimit and setpriv live.
        command: the program and its arguments (run with ``PATH`` = :data:`SANDBOX_PATH`,
            never through a shell unless the command itself names one).
        workspace: host directory mounted read-write at :data:`WORKSPACE_DIR` (the cwd).
        deps: host ``node_modules`` directory mounted read-only at :data:`DEPS_DIR`.
        env: the command's environment (default :func:`sandbox_env`).
        privileged: bwrap's privileged mode (default: whether this process is root).
        network: override ``policy.network`` (the dependency installer needs the network).
        subdir: working directory relative to the workspace (default its root); the
            caller checked that it lies inside.

    Returns:
        ``[prlimit, <limits>, --, bwrap, <namespaces>, <mounts>, <env>, --, ...command]``;
        start it with an empty environment.
    """
    if privileged is None:
        privileged = os.geteuid() == 0
    share_net = policy.network if network is None else network
    lim = policy.limits
    argv = [
        tools.prlimit,
        f"--cpu={lim.cpu_seconds}",
        f"--data={lim.memory_bytes}",
        f"--fsize={lim.file_bytes}",
        f"--nofile={_MAX_OPEN_FILES}",
        "--core=0",
    ]
    if privileged:  # RLIMIT_NPROC counts the real uid's processes: only a real uid works
        argv.append(f"--nproc={lim.processes}")
    argv += ["--", tools.bwrap]
    if privileged:
        argv += ["--unshare-ipc", "--unshare-pid", "--unshare-uts", "--unshare-cgroup-try"]
        if not share_net:
            argv.append("--unshare-net")
        for cap in _SETPRIV_CAPS:
            argv += ["--cap-add", cap]
    else:
        argv += ["--unshare-all", "--uid", str(policy.uid), "--gid", str(policy.gid)]
        argv += ["--disable-userns"]
        if share_net:
            argv.append("--share-net")
    argv += ["--die-with-parent", "--new-session", "--hostname", "sandbox"]
    argv += _system_mounts(policy, network=share_net)
    argv += ["--proc", "/proc", "--dev", "/dev"]
    argv += ["--perms", "1777", "--size", str(lim.tmp_bytes), "--tmpfs", "/tmp"]
    argv += ["--perms", "0755", "--dir", "/work"]
    argv += ["--bind", str(workspace), WORKSPACE_DIR]
    if deps is not None:
        argv += ["--ro-bind", str(deps), DEPS_DIR]
    chdir = f"{WORKSPACE_DIR}/{subdir}" if subdir else WORKSPACE_DIR
    argv += ["--chdir", chdir, "--clearenv"]
    for key, value in (sandbox_env() if env is None else env).items():
        argv += ["--setenv", key, value]
    argv.append("--")
    if privileged:
        argv += [
            tools.setpriv,
            f"--reuid={policy.uid}",
            f"--regid={policy.gid}",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--no-new-privs",
            "--",
        ]
    argv += list(command)
    return argv


def _system_mounts(policy: Policy, *, network: bool) -> list[str]:
    args: list[str] = []
    for path in _SYSTEM_DIRS:
        if os.path.isdir(path):
            args += ["--ro-bind", path, path]
    for name in _ROOT_LINKS:
        host = f"/{name}"
        if os.path.islink(host):  # merged /usr: keep the link, its target is mounted
            args += ["--symlink", os.readlink(host), host]
        elif os.path.isdir(host):
            args += ["--ro-bind", host, host]
    args += ["--perms", "0755", "--dir", "/etc", "--perms", "0755", "--dir", "/etc/ssl"]
    for path in (*_ETC_FILES, *(_NET_ETC_FILES if network else ())):
        args += ["--ro-bind-try", path, path]
    for path in policy.extra_ro:
        args += ["--ro-bind", path, path]
    return args
