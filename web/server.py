"""How Runwright configures Hypercorn, for ``runwright serve`` and the demo alike."""

from __future__ import annotations

from hypercorn.config import Config

from runtime.settings import Settings


def hypercorn_config(bind: str, settings: Settings) -> Config:
    """A Hypercorn config serving on ``bind`` (``"host:port"``).

    No ``Server`` header (it would name the server and its version to every client); the
    graceful shutdown is the settings' grace period.
    """
    config = Config()
    config.bind = [bind]
    config.include_server_header = False
    config.graceful_timeout = settings.shutdown_grace_seconds
    return config
