"""The command sandbox (issue 9 item 1): every command an agent can start runs under
bubblewrap with the policy of :mod:`runtime.sandbox.policy`, its app's npm dependencies
installed once per manifest into a shared read-only cache (:mod:`runtime.sandbox.deps`).

Public API:
    :class:`Sandbox` — run one command in a workspace (what the command tools call).
    :func:`announce` — log at start how commands will run.
    :class:`SandboxUnavailable`, :class:`DependencyError` — why a command could not run.
"""

from runtime.sandbox.deps import DependencyError
from runtime.sandbox.policy import SandboxUnavailable
from runtime.sandbox.runner import Sandbox, announce

__all__ = ["DependencyError", "Sandbox", "SandboxUnavailable", "announce"]
