"""Log lines that say which run, tenant, app, node and request they concern.

Four context variables carry the ids: ``request_id``, ``tenant_id``, ``app_id`` and
``run_id``. :func:`bind` sets them; every record logged afterwards *in the same context*
carries them (the :class:`ContextFilter` copies them onto the record). Where the context
comes from:

- HTTP requests: each request runs in its own task, so what a request binds (its request
  id, then the tenant, app and run the auth chain resolved) stays with that request.
- Actor threads: a thread starts with an empty context; the RunActor binds its run (and,
  once it read the row, the tenant and app) in its own thread, explicitly.
- Coroutines an actor starts on the loop (``LoopPort.run``/``spawn`` use
  ``run_coroutine_threadsafe``, whose callback copies the *calling* thread's context), so
  the engine task and the database calls of a run carry the actor's ids without more code.

The node id is one per process (``RUNWRIGHT_NODE_ID``): the formatters carry it.

:func:`configure_logging` installs one handler on the root logger with the text or JSON
formatter (``RUNWRIGHT_LOG_FORMAT``: ``auto`` = text on a terminal, JSON otherwise).
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import uuid
from datetime import UTC, datetime
from typing import IO, Any

__all__ = [
    "CONTEXT_FIELDS",
    "ContextFilter",
    "JsonFormatter",
    "TextFormatter",
    "bind",
    "build_handler",
    "configure_logging",
    "current",
]

CONTEXT_FIELDS = ("request_id", "tenant_id", "app_id", "run_id")
"""The ids a record can carry, in the order text lines show them."""

_VARS: dict[str, contextvars.ContextVar[str | None]] = {
    name: contextvars.ContextVar(f"runwright_log_{name}", default=None) for name in CONTEXT_FIELDS
}

# Libraries whose INFO lines are start-up chatter for us: shown only at DEBUG.
DEMOTED_LOGGERS = ("pgserver",)

# Attributes every LogRecord has; anything else on a record came from ``extra=`` (or is
# one of ours: the ids and the node).
_RECORD_ATTRS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
_OWN_ATTRS = frozenset(CONTEXT_FIELDS) | {"node_id"}


def bind(**ids: uuid.UUID | str | None) -> None:
    """Set some of the context ids (``request_id``, ``tenant_id``, ``app_id``, ``run_id``)
    for the rest of the current context (task or thread); None leaves a field unchanged.

    Raises:
        TypeError: an unknown field name.
    """
    for name, value in ids.items():
        var = _VARS.get(name)
        if var is None:
            raise TypeError(f"unknown log context field {name!r}")
        if value is not None:
            var.set(str(value))


def current() -> dict[str, str]:
    """The ids bound in the current context (only those that are set)."""
    return {name: value for name, var in _VARS.items() if (value := var.get()) is not None}


class ContextFilter(logging.Filter):
    """Copies the bound ids onto each record (an explicit ``extra={"run_id": ...}`` wins),
    and gives every record the process's ``node_id``."""

    def __init__(self, node_id: str) -> None:
        super().__init__()
        self.node_id = node_id

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in _VARS.items():
            if getattr(record, name, None) is None:
                setattr(record, name, var.get())
        record.node_id = self.node_id
        return True


class DemoteInfo(logging.Filter):
    """Logger filter: INFO records become DEBUG ones (shown only when the level is DEBUG;
    handlers drop them otherwise, as they filter by their own level)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.INFO:
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts`` (ISO 8601 UTC), ``level``, ``logger``, ``message``,
    ``node_id``, the bound ids that are set, any ``extra=`` fields, and ``exc`` (the
    traceback) when there is one. Values that are not JSON types are written as strings."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "node_id": getattr(record, "node_id", None),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = str(value)
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRS and key not in line and key not in _OWN_ATTRS:
                line[key] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exc"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return json.dumps(line, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``<time> <LEVEL> <logger>: <message> [request_id=... run_id=...]``: the classic line
    with the bound ids that are set appended (the node id is left out: one per process)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        ids = [
            f"{name}={value}"
            for name in CONTEXT_FIELDS
            if (value := getattr(record, name, None)) is not None
        ]
        if not ids:
            return text
        head, sep, tail = text.partition("\n")  # ids on the first line, before a traceback
        return f"{head} [{' '.join(ids)}]{sep}{tail}"


def resolve_format(log_format: str, stream: IO[str]) -> str:
    """``text`` or ``json`` for a ``RUNWRIGHT_LOG_FORMAT`` value; ``auto`` is text when
    ``stream`` is a terminal and JSON otherwise (a log collector reads it)."""
    if log_format != "auto":
        return log_format
    isatty = getattr(stream, "isatty", None)
    return "text" if isatty is not None and isatty() else "json"


def build_handler(
    *, level: str | int, log_format: str, node_id: str, stream: IO[str]
) -> logging.Handler:
    """A stream handler with the context filter and the chosen formatter (text or JSON).

    Args:
        level: the handler's threshold (``"INFO"``...).
        log_format: ``text``, ``json`` or ``auto`` (see :func:`resolve_format`).
        node_id: written on every JSON line.
        stream: where lines go.
    """
    handler = logging.StreamHandler(stream)
    handler.setLevel(level)
    handler.addFilter(ContextFilter(node_id))
    chosen = resolve_format(log_format, stream)
    handler.setFormatter(JsonFormatter() if chosen == "json" else TextFormatter())
    return handler


def demote_chatter() -> None:
    """Lower the INFO lines of :data:`DEMOTED_LOGGERS` to DEBUG (idempotent)."""
    for name in DEMOTED_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, DemoteInfo) for f in logger.filters):
            logger.addFilter(DemoteInfo())


def configure_logging(
    *, level: str | int, log_format: str, node_id: str, stream: IO[str] | None = None
) -> logging.Handler:
    """Route every logger through one handler (:func:`build_handler`) on the root logger.

    Replaces the root logger's handlers (a second call reconfigures, it does not add) and
    demotes library chatter (:func:`demote_chatter`).

    Args:
        level: the threshold for the root logger and the handler.
        log_format: ``text``, ``json`` or ``auto``.
        node_id: written on every JSON line.
        stream: where lines go (default: ``sys.stderr``).

    Returns:
        The installed handler.
    """
    handler = build_handler(
        level=level,
        log_format=log_format,
        node_id=node_id,
        stream=stream if stream is not None else sys.stderr,
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    demote_chatter()
    return handler
