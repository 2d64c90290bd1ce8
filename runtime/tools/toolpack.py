"""The Toolpack: dispatches a model's tool call to its handler (contract 7.2).

``call`` never raises except :class:`asyncio.CancelledError`: argument problems, policy
violations, timeouts and unexpected exceptions all come back as ``{error, code, ...}``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from runtime import redact
from runtime.paths import PathPolicyError
from runtime.processes import KILL_GRACE_SECONDS
from runtime.settings import Settings
from runtime.tools.arguments import bind_arguments
from runtime.tools.context import ToolContext
from runtime.tools.errors import ToolError, envelope, error_envelope
from runtime.tools.specs import TOOLS, ToolSpec

log = logging.getLogger(__name__)

TOOL_NOT_FOUND = "TOOL_NOT_FOUND"
TOOL_TIMEOUT = "TOOL_TIMEOUT"
_COMMAND_MARGIN_SECONDS = 15.0  # kill grace + pipe drain after a command's own timeout


class Toolpack:
    """The coding toolpack for one settings object (stateless; share it between runs).

    Args:
        settings: toolpack settings (allowlist, timeouts, caps, feature flags).
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._redactor = redact.for_settings(settings.runs_dir, settings.data_dir)
        self._specs: dict[str, ToolSpec] = {}
        for spec in TOOLS:
            self._specs[spec.name] = spec
            self._specs[spec.slug] = spec  # the registry slug is accepted too

    @property
    def names(self) -> list[str]:
        """Function names, ``coding_agent_*``, in catalogue order."""
        return [spec.name for spec in TOOLS]

    def openai_tools(self) -> list[dict[str, Any]]:
        """Chat-completions ``tools`` entries (``type: function`` with JSON Schema
        ``parameters`` and ``required``) for every tool."""
        return [spec.openai_tool() for spec in TOOLS]

    def tool_timeout(self, name: str) -> float:
        """Seconds a call of ``name`` may take (contract 7.3 table). Command tools get at
        least their command timeout plus a kill margin, so the command's own timeout (which
        reports output) fires first. Unknown names get ``settings.tool_timeout_seconds``.
        """
        spec = self._specs.get(name)
        if spec is None:
            return self.settings.tool_timeout_seconds
        margin = KILL_GRACE_SECONDS + _COMMAND_MARGIN_SECONDS
        s = self.settings
        if spec.slug == "run_targeted_tests":
            return max(spec.timeout, s.test_timeout_seconds + margin)
        if spec.slug == "build_worker_precheck":
            return max(spec.timeout, s.build_timeout_seconds + margin)
        if spec.slug in ("apply_patch", "edit_file") and s.auto_verify_patch:
            return spec.timeout + 2 * (s.test_timeout_seconds + margin)
        return spec.timeout

    async def call(self, name: str, arguments: str | dict[str, Any], ctx: ToolContext) -> dict:
        """Run one tool call and return its output envelope.

        Args:
            name: ``coding_agent_<slug>`` (or the bare slug).
            arguments: the model's arguments (any shape :mod:`.arguments` accepts).
            ctx: the server-side context; the only source of run, tenant, app, user and
                workspace (argument keys such as ``run_id`` are ignored).

        Returns:
            The tool's output, or ``{error, code, ...}``: ``TOOL_NOT_FOUND``,
            ``TOOL_INPUT_VALIDATION_FAILED``, ``TOOL_TIMEOUT``,
            ``BUILDER_PATCH_POLICY_VIOLATION`` (path policy, permissions, allowlist),
            ``TOOL_EXECUTION_FAILED`` or a tool-specific code.

        Raises:
            asyncio.CancelledError: the calling task was cancelled (commands are killed
                first).
        """
        spec = self._specs.get(name)
        if spec is None:
            return envelope(f"Unknown tool: {name}", TOOL_NOT_FOUND)
        timeout = self.tool_timeout(name)
        try:
            args = bind_arguments(spec.fields, arguments)
            async with asyncio.timeout(timeout) as scope:
                return await spec.handler(args, ctx, self.settings)
        except TimeoutError as exc:
            if not scope.expired():
                return self._failure(exc, ctx)
            return envelope(f"{spec.name} timed out after {timeout:g} seconds", TOOL_TIMEOUT)
        except Exception as exc:
            return self._failure(exc, ctx)

    def _failure(self, exc: Exception, ctx: ToolContext) -> dict[str, Any]:
        if not isinstance(exc, ToolError | PathPolicyError | PermissionError | OSError):
            log.warning("tool failed unexpectedly", exc_info=exc)
        out = error_envelope(exc)
        # OS errors name absolute paths; the model (and the event log) see relative ones,
        # and no other server path at all.
        text = str(out["error"]).replace(f"{ctx.workspace.root}/", "")
        out["error"] = self._redactor.text(text)
        return out
