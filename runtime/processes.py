"""Helpers for the helper processes Runwright manages (the local model server, a managed
OpenCode server): a free loopback port, and a parent-death signal so a SIGKILLed Runwright
leaves no orphan serving on a port."""

from __future__ import annotations

import shutil
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
