"""How Runwright configures Hypercorn, for ``runwright serve`` and the demo alike."""

from __future__ import annotations

import logging

from hypercorn.config import Config

from runtime.settings import Settings
from web.header_limits import SERVER_HEAD_BYTES


def hypercorn_config(bind: str, settings: Settings) -> Config:
    """A Hypercorn config serving on ``bind`` (``"host:port"``).

    No ``Server`` header (it would name the server and its version to every client); the
    graceful shutdown is the settings' grace period; idle connections stay open for
    ``http_keep_alive_seconds`` (longer than clients keep theirs, see the setting).
    Hypercorn's error logger gets no handler of its own: its lines (``Running on ...``) go
    through the root handler once, as text or JSON (``runtime/logs.py``); with hypercorn's
    default ``"-"`` it had its own stderr handler *and* propagated, so each line was
    printed twice. No hypercorn access log: the app writes its own
    (``web/request_context.py``, with the request id). Request heads up to
    :data:`web.header_limits.SERVER_HEAD_BYTES` reach the app, which refuses those over its
    own, lower bound with a JSON 431 (Hypercorn's own 431 has no body).
    """
    config = Config()
    config.bind = [bind]
    config.errorlog = logging.getLogger("hypercorn.error")
    config.accesslog = None
    config.include_server_header = False
    config.graceful_timeout = settings.shutdown_grace_seconds
    config.keep_alive_timeout = settings.http_keep_alive_seconds
    config.h11_max_incomplete_size = SERVER_HEAD_BYTES
    return config
