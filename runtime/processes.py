"""Helpers for the processes Runwright manages (the local model server, a managed OpenCode
server, agent commands): a free loopback port, a parent-death signal so a SIGKILLed
Runwright leaves no orphan serving on a port, and stopping a whole process group."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now (bind to 0, read it, release it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def pdeathsig_prefix() -> list[str]:
    """``setpriv --pdeathsig KILL --`` when util-linux ``setpriv`` exists, else ``[]``.

    Prefix a command with it and the kernel kills the process if the thread that started
    it dies without stopping it. The flag survives ``exec``; it fires when the *starting
    thread* exits, so start the process from the thread that runs the event loop for the
    process's whole life.
    """
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--"] if setpriv else []


def signal_group(pgid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to a process group; a group that is already gone is not an error."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


async def stop_group(proc: asyncio.subprocess.Process, grace: float) -> None:
    """Stop a process started with ``start_new_session=True`` and everything in its group:
    SIGTERM, up to ``grace`` seconds to exit, then SIGKILL (children may outlive the
    leader), then reap the leader."""
    if proc.returncode is None:
        signal_group(proc.pid, signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), grace)
    signal_group(proc.pid, signal.SIGKILL)
    await proc.wait()
