"""The OpenCode engine: runs on a real ``opencode serve`` through its official HTTP API.

Modules: :mod:`.install` (pinned npm package, binary location; ``runwright opencode
install``), :mod:`.server` (the managed process), :mod:`.client`
(HTTP), :mod:`.config` (the run's model as a provider), :mod:`.policy` (permissions),
:mod:`.translate` (events and results), :mod:`.session` (one run), :mod:`.engine`.
"""

from runtime.engines.opencode.engine import OpenCodeEngine
from runtime.engines.opencode.install import (
    PINNED_VERSION,
    OpenCodeNotInstalled,
    install,
    locate_binary,
)
from runtime.engines.opencode.session import OpenCodeSession

__all__ = [
    "PINNED_VERSION",
    "OpenCodeEngine",
    "OpenCodeNotInstalled",
    "OpenCodeSession",
    "install",
    "locate_binary",
]
