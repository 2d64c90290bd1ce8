"""Pytest fixtures for the scripted OpenAI-compatible server.

Import them into a ``conftest.py`` (``from tests.support.fixtures_openai import
scripted_openai, dead_openai_url``) or a test module.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tests.support.scripted_openai import ScriptedOpenAI

__all__ = ["dead_openai_url", "scripted_openai"]


@pytest.fixture
def scripted_openai() -> Iterator[ScriptedOpenAI]:
    """A started :class:`ScriptedOpenAI` on a free loopback port, stopped after the test.

    Its models list holds ``scripted-model``; script replies with ``server.push(...)``.
    """
    server = ScriptedOpenAI()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def dead_openai_url() -> str:
    """A ``http://127.0.0.1:<port>/v1`` base URL nothing listens on (connection refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"
