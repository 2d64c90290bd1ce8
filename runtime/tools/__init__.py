"""The coding toolpack (contract 7.2-7.3): file, search, patch, command and checkpoint
tools a native agent calls as ``coding_agent_*`` functions.

Public API:
    :class:`ToolContext` — server-side identity and workspace of a call.
    :class:`CheckpointHost` — protocol the storage side implements for checkpoints.
    :class:`Toolpack` — schemas, timeouts and ``call``.
    :func:`tool_failure_diagnostics` — contract 3.4 tool.failed enrichment.
    :class:`ToolError`, :class:`ToolPermissionError` — what tool code (and a
    CheckpointHost) raises; converted to ``{error, code}`` envelopes.
"""

from runtime.tools.context import CheckpointHost, ToolContext
from runtime.tools.diagnostics import tool_failure_diagnostics
from runtime.tools.errors import ToolError, ToolPermissionError
from runtime.tools.toolpack import Toolpack

__all__ = [
    "CheckpointHost",
    "ToolContext",
    "ToolError",
    "ToolPermissionError",
    "Toolpack",
    "tool_failure_diagnostics",
]
