"""Helpers for the processes Runwright manages (the local model server, a managed OpenCode
server, agent commands): a free loopback port, a parent-death signal so a SIGKILLed
Runwright leaves no orphan serving on a port, stopping a whole process group, and running
a bounded command (:func:`run_capped`: time limit, output caps, the whole group killed on
timeout or cancellation)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

TRUNCATION_SUFFIX = "... [truncated]"  # after capped command output (contract 7.3)
KILL_GRACE_SECONDS = 2.0  # lets npm/test runners remove temp files before SIGKILL
_GROUP_EXIT_POLLS = 100  # x 10 ms: time for SIGKILLed group members to disappear
_PIPE_DRAIN_SECONDS = 5.0  # a daemon that left the group may keep our pipes open
_READ_CHUNK = 65536


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


@dataclass(frozen=True)
class CommandResult:
    """An exited (or killed) command: exit ``code`` (124 on timeout, 127 when the program
    is missing), capped ``stdout``/``stderr`` text, and whether it timed out."""

    code: int
    stdout: str
    stderr: str
    timed_out: bool = False


async def run_capped(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    time_limit: float,
    max_output_bytes: int,
    display: str | None = None,
) -> CommandResult:
    """Run ``argv`` in its own process group with exactly ``env``, a ``time_limit``
    (seconds) and a per-stream output cap (bytes; reading goes on past the cap so the
    child never blocks on a full pipe).

    On timeout the group gets SIGTERM, then SIGKILL after :data:`KILL_GRACE_SECONDS`.
    Cancelling the awaiting task kills the group the same way before CancelledError
    propagates. ``display`` names the program in the 127 message (default ``argv[0]``).
    """
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=dict(env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # own process group: one killpg reaches every child
        )
    except FileNotFoundError:
        return CommandResult(127, "", f"Command not found: {display or argv[0]}")
    assert proc.stdout is not None and proc.stderr is not None
    readers = [
        asyncio.ensure_future(_drain(proc.stdout, max_output_bytes)),
        asyncio.ensure_future(_drain(proc.stderr, max_output_bytes)),
    ]
    timed_out = False
    try:
        try:
            await asyncio.wait_for(proc.wait(), time_limit)
        except TimeoutError:
            timed_out = True
        await _stop_all(proc)  # also reaps children the leader left running
        done, _ = await asyncio.wait(readers, timeout=_PIPE_DRAIN_SECONDS)
    except BaseException:
        signal_group(proc.pid, signal.SIGTERM)  # at once, before any await
        for reader in readers:
            reader.cancel()
        stopper = asyncio.ensure_future(_stop_all(proc))
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(stopper)  # a second cancel leaves the stopper running
        raise
    stdout, stderr = (r.result() if r in done else "" for r in readers)
    if timed_out:
        stderr += f"\nCommand timed out after {time_limit:g} seconds"
        return CommandResult(124, stdout, stderr, timed_out=True)
    return CommandResult(proc.returncode if proc.returncode is not None else -1, stdout, stderr)


async def _drain(stream: asyncio.StreamReader, cap: int) -> str:
    kept, truncated = bytearray(), False
    while chunk := await stream.read(_READ_CHUNK):
        room = cap - len(kept)
        kept += chunk[: max(room, 0)]
        truncated = truncated or len(chunk) > room
    text = kept.decode("utf-8", errors="replace")
    return text + TRUNCATION_SUFFIX if truncated else text


async def _stop_all(proc: asyncio.subprocess.Process) -> None:
    await stop_group(proc, KILL_GRACE_SECONDS)
    # SIGKILL is delivered asynchronously and only the leader is our child to wait for;
    # confirm the rest of the group is gone too (bounded: unreaped zombies still count).
    # No event exists for the death of a process that is not our child, hence the poll.
    for _ in range(_GROUP_EXIT_POLLS):
        if not _group_exists(proc.pid):
            break
        await asyncio.sleep(0.01)


def _group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True
