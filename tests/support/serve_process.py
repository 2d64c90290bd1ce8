"""A real ``runwright serve`` child process for end-to-end and security tests (the
in-process Hypercorn server is :mod:`tests.support.server`; several processes on one
database: :mod:`tests.support.nodes`)."""

from __future__ import annotations

from tests.support.live_server import server_process as serve
from tests.support.server import free_port

__all__ = ["free_port", "serve"]
