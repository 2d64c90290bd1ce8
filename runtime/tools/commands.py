"""Allowlisted commands in the workspace: run_targeted_tests, build_worker_precheck
(contract 7.3).

A command is a token list or a shell-like string (split with :mod:`shlex`, never run by a
shell). It must equal one allowlisted command token for token and contain no shell
metacharacter. It then runs in the sandbox (:class:`runtime.sandbox.Sandbox`: bubblewrap,
only the workspace writable, the app's dependencies read-only, no network, no server
environment, resource limits): ``package.json`` scripts are code the model wrote. On
timeout *or* cancellation the whole tree is killed (SIGTERM, then SIGKILL after
:data:`runtime.processes.KILL_GRACE_SECONDS`). No bwrap means no command (fail closed).
"""

from __future__ import annotations

import shlex
import time
from typing import Any

from runtime.processes import CommandResult
from runtime.sandbox import DependencyError, Sandbox, SandboxUnavailable
from runtime.settings import Settings
from runtime.tools.context import ToolContext
from runtime.tools.errors import VALIDATION_FAILED, ToolError, ToolPermissionError

FORBIDDEN_SEQUENCES = ("|", "&&", "||", ";", "$(", "`", ">", "<")
DEFAULT_TEST_COMMAND = "npm run test -- --run --passWithNoTests"
BUILD_COMMAND = "npm run build"
SANDBOX_UNAVAILABLE = "SANDBOX_UNAVAILABLE"
DEPENDENCY_INSTALL_FAILED = "DEPENDENCY_INSTALL_FAILED"


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


def check_command(value: object, settings: Settings) -> list[str]:
    """The tokens of a command the sandbox may run: :func:`parse_command`, then
    :func:`check_allowlisted` against ``settings.command_allowlist``. The one check of a
    command, before it runs and on an approver's edited arguments
    (:func:`runtime.approvals.check_arguments`).

    Raises:
        ToolError: see :func:`parse_command` and :func:`check_allowlisted`.
    """
    tokens = parse_command(value)
    check_allowlisted(tokens, settings.command_allowlist)
    return tokens


def check_tests_arguments(args: dict[str, Any], settings: Settings) -> None:
    """The argument rules of run_targeted_tests (bound ``args``): its command, or the
    default test command, passes :func:`check_command`."""
    check_command(_test_command(args), settings)


def _test_command(args: dict[str, Any]) -> object:
    return args["command"] if args["command"] is not None else DEFAULT_TEST_COMMAND


async def _run_checked(
    value: object, ctx: ToolContext, settings: Settings, time_limit: float
) -> tuple[str, CommandResult]:
    tokens = check_command(value, settings)
    started = time.perf_counter()
    try:
        result = await Sandbox(settings).run(
            tokens,
            ctx.workspace.root,
            time_limit=time_limit,
            max_output_bytes=settings.max_command_output_bytes,
        )
    except SandboxUnavailable as exc:
        raise ToolError(str(exc), code=SANDBOX_UNAVAILABLE) from None
    except DependencyError as exc:
        raise ToolError(
            f"Installing the app's dependencies failed: {exc}", code=DEPENDENCY_INSTALL_FAILED
        ) from None
    command = shlex.join(tokens)
    if ctx.metrics is not None:  # allowlisted, so a bounded label
        ctx.metrics.command(command, time.perf_counter() - started, code=result.code,
                            timed_out=result.timed_out)  # fmt: skip
    return command, result


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
    command, result = await _run_checked(
        _test_command(args), ctx, settings, settings.test_timeout_seconds
    )
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
