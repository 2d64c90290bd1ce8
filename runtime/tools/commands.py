"""Allowlisted commands in the workspace: run_targeted_tests, build_worker_precheck
(contract 7.3).

A command is a token list or a shell-like string (split with :mod:`shlex`, never run by a
shell). It must equal one allowlisted command token for token and contain no shell
metacharacter. It runs in its own process group with a minimal environment (the server's
secrets never reach ``npm`` scripts the model can edit); on timeout *or* cancellation the
whole group gets SIGTERM, then SIGKILL after :data:`KILL_GRACE_SECONDS`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.processes import signal_group, stop_group
from runtime.settings import Settings
from runtime.tools.context import ToolContext
from runtime.tools.errors import VALIDATION_FAILED, ToolError, ToolPermissionError

TRUNCATION_SUFFIX = "... [truncated]"  # after capped command output (contract 7.3)
FORBIDDEN_SEQUENCES = ("|", "&&", "||", ";", "$(", "`", ">", "<")
DEFAULT_TEST_COMMAND = "npm run test -- --run --passWithNoTests"
BUILD_COMMAND = "npm run build"
KILL_GRACE_SECONDS = 2.0  # lets npm/test runners remove temp files before SIGKILL
_GROUP_EXIT_POLLS = 100  # x 10 ms: time for SIGKILLed group members to disappear
_PIPE_DRAIN_SECONDS = 5.0  # a daemon that left the group may keep our pipes open
_ENV_PASSTHROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "NODE_OPTIONS")
_READ_CHUNK = 65536


@dataclass(frozen=True)
class CommandResult:
    """An exited (or killed) command: exit ``code`` (124 on timeout, 127 when the program
    is missing), capped ``stdout``/``stderr`` text, and whether it timed out."""

    code: int
    stdout: str
    stderr: str
    timed_out: bool = False


def parse_command(value: object) -> list[str]:
    """Tokens of a command given as a token list or a shell-style string.

    Raises:
        ToolError: ``TOOL_INPUT_VALIDATION_FAILED`` for any other type or bad quoting.
    """
    if isinstance(value, str):
        try:
            return shlex.split(value)
        except ValueError as exc:
            raise ToolError(
                f"Invalid command: {exc}", code=VALIDATION_FAILED, field="command"
            ) from None
    if isinstance(value, list | tuple) and all(isinstance(t, str) for t in value):
        return list(value)
    raise ToolError(
        "command must be an array of tokens or a shell-style string",
        code=VALIDATION_FAILED,
        field="command",
    )


def check_allowlisted(tokens: list[str], allowlist: tuple[str, ...]) -> None:
    """Refuse a command that is not exactly allowlisted or holds a shell metacharacter.

    Raises:
        ToolPermissionError: ``Command is not allowlisted: <command>``.
    """
    joined = " ".join(tokens)
    allowed = [shlex.split(entry) for entry in allowlist]
    if not tokens or any(s in joined for s in FORBIDDEN_SEQUENCES) or tokens not in allowed:
        raise ToolPermissionError(f"Command is not allowlisted: {joined}", field="command")


async def run_command(
    tokens: list[str], *, cwd: Path, time_limit: float, max_output_bytes: int
) -> CommandResult:
    """Run ``tokens`` in ``cwd`` with a ``time_limit`` (seconds) and a per-stream output cap
    (bytes).

    Cancelling the awaiting task kills the process group before CancelledError propagates.
    """
    env = {k: os.environ[k] for k in _ENV_PASSTHROUGH if k in os.environ}
    env.update({"CI": "1", "NO_COLOR": "1"})
    try:
        proc = await asyncio.create_subprocess_exec(
            *tokens,
            cwd=cwd,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # own process group: one killpg reaches every child
        )
    except FileNotFoundError:
        return CommandResult(127, "", f"Command not found: {tokens[0]}")
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
        await _stop_group(proc)  # also reaps children the leader left running
        done, _ = await asyncio.wait(readers, timeout=_PIPE_DRAIN_SECONDS)
    except BaseException:
        signal_group(proc.pid, signal.SIGTERM)  # at once, before any await
        for reader in readers:
            reader.cancel()
        stopper = asyncio.ensure_future(_stop_group(proc))
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(stopper)  # a second cancel leaves the stopper running
        raise
    stdout, stderr = (r.result() if r in done else "" for r in readers)
    if timed_out:
        stderr += f"\nCommand timed out after {time_limit:g} seconds"
        return CommandResult(124, stdout, stderr, timed_out=True)
    return CommandResult(proc.returncode if proc.returncode is not None else -1, stdout, stderr)


async def _drain(stream: asyncio.StreamReader, cap: int) -> str:
    # Keep reading past the cap so the child never blocks on a full pipe.
    kept, truncated = bytearray(), False
    while chunk := await stream.read(_READ_CHUNK):
        room = cap - len(kept)
        kept += chunk[: max(room, 0)]
        truncated = truncated or len(chunk) > room
    text = kept.decode("utf-8", errors="replace")
    return text + TRUNCATION_SUFFIX if truncated else text


async def _stop_group(proc: asyncio.subprocess.Process) -> None:
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


async def _run_checked(
    value: object, ctx: ToolContext, settings: Settings, time_limit: float
) -> tuple[str, CommandResult]:
    tokens = parse_command(value)
    check_allowlisted(tokens, settings.command_allowlist)
    result = await run_command(
        tokens,
        cwd=ctx.workspace.root,
        time_limit=time_limit,
        max_output_bytes=settings.max_command_output_bytes,
    )
    return shlex.join(tokens), result


def _result_body(ctx: ToolContext, command: str, result: CommandResult) -> dict[str, Any]:
    body = {
        "sandbox_id": ctx.workspace.sandbox_id,
        "command": command,
        "code": result.code,
        "stdout": result.stdout,
        "stderr": result.stderr,
        "revision_token": ctx.workspace.revision_token,
    }
    if result.timed_out:
        body["timed_out"] = True
    return body


def _outcome(
    ctx: ToolContext, command: str, result: CommandResult, *, success: str
) -> dict[str, Any]:
    # The checked-command tool output: {status: success | "failed", ok, command, result}.
    ok = result.code == 0
    return {
        "status": success if ok else "failed",
        "ok": ok,
        "command": command,
        "result": _result_body(ctx, command, result),
    }


async def run_targeted_tests(
    args: dict[str, Any], ctx: ToolContext, settings: Settings
) -> dict[str, Any]:
    """``{status: "passed" | "failed", ok, command, result: {sandbox_id, command, code,
    stdout, stderr, revision_token}}`` (timeout ``test_timeout_seconds``)."""
    value = args["command"] if args["command"] is not None else DEFAULT_TEST_COMMAND
    command, result = await _run_checked(value, ctx, settings, settings.test_timeout_seconds)
    return _outcome(ctx, command, result, success="passed")


async def build_worker_precheck(
    args: dict[str, Any], ctx: ToolContext, settings: Settings
) -> dict[str, Any]:
    """Run ``npm run build``: ``{status: "succeeded" | "failed", ok, command, result}``
    (timeout ``build_timeout_seconds``; still subject to the allowlist)."""
    command, result = await _run_checked(
        BUILD_COMMAND, ctx, settings, settings.build_timeout_seconds
    )
    return _outcome(ctx, command, result, success="succeeded")


async def verification_runs(ctx: ToolContext, settings: Settings) -> list[dict[str, Any]]:
    """Run the first two allowlisted commands after a patch (contract 7.4,
    ``auto_verify_patch``): ``[{command, code, stdout, stderr}]``."""
    runs: list[dict[str, Any]] = []
    for entry in settings.command_allowlist[:2]:
        try:
            command, result = await _run_checked(
                entry, ctx, settings, settings.test_timeout_seconds
            )
        except ToolError as exc:  # the patch is applied already; report, don't fail it
            runs.append({"command": entry, "code": None, "stdout": "", "stderr": exc.message})
            continue
        runs.append(
            {"command": command, "code": result.code, "stdout": result.stdout,
             "stderr": result.stderr}
        )  # fmt: skip
    return runs
