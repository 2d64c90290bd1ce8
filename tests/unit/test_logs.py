"""Log formatting: the bound ids on every line, JSON that parses, pgserver's INFO at DEBUG."""

from __future__ import annotations

import contextvars
import io
import json
import logging
import threading

import pytest

from runtime.logs import bind, build_handler, configure_logging, current, resolve_format


@pytest.fixture
def root_restored():
    """configure_logging replaces the root handlers: put pytest's back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def _logged(fmt: str, emit, *, level: str = "INFO") -> list[str]:
    stream = io.StringIO()
    handler = build_handler(level=level, log_format=fmt, node_id="host:1", stream=stream)
    logger = logging.getLogger("test.logs")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        contextvars.copy_context().run(emit, logger)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue().splitlines()


def test_json_lines_carry_the_bound_ids_the_node_and_extras():
    def emit(logger):
        logger.info("before binding")
        bind(request_id="req-1", tenant_id="t-1", app_id="a-1", run_id="r-1")
        logger.info("run %s started", "r-1", extra={"engine": "native"})
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("it failed")

    first, second, third = (json.loads(line) for line in _logged("json", emit))
    assert first["message"] == "before binding" and first["node_id"] == "host:1"
    assert "run_id" not in first and "request_id" not in first
    assert second["message"] == "run r-1 started"
    assert second["level"] == "INFO" and second["logger"] == "test.logs"
    assert {k: second[k] for k in ("request_id", "tenant_id", "app_id", "run_id")} == {
        "request_id": "req-1", "tenant_id": "t-1", "app_id": "a-1", "run_id": "r-1",
    }  # fmt: skip
    assert second["engine"] == "native"
    assert second["ts"].endswith("+00:00")
    assert "ValueError: boom" in third["exc"] and third["run_id"] == "r-1"


def test_an_explicit_extra_id_wins_over_the_bound_one():
    def emit(logger):
        bind(run_id="bound")
        logger.warning("about another run", extra={"run_id": "explicit"})

    (line,) = _logged("json", emit)
    assert json.loads(line)["run_id"] == "explicit"


def test_text_lines_append_the_bound_ids_before_a_traceback():
    def emit(logger):
        logger.info("plain")
        bind(run_id="r-9", tenant_id="t-9")
        try:
            raise KeyError("k")
        except KeyError:
            logger.exception("with ids")

    lines = _logged("text", emit)
    assert lines[0].endswith("INFO test.logs: plain")
    assert lines[1].endswith("ERROR test.logs: with ids [tenant_id=t-9 run_id=r-9]")
    assert lines[2].startswith("Traceback")


def test_ids_stay_in_their_own_context_and_thread():
    seen: dict[str, dict[str, str]] = {}

    def other_thread():
        seen["thread"] = current()
        bind(run_id="thread-run")
        seen["thread_after"] = current()

    def body():
        bind(run_id="loop-run")
        worker = threading.Thread(target=other_thread)
        worker.start()
        worker.join()
        seen["here"] = current()

    contextvars.copy_context().run(body)
    assert seen["thread"] == {}  # a thread starts with an empty context
    assert seen["thread_after"] == {"run_id": "thread-run"}
    assert seen["here"] == {"run_id": "loop-run"}
    assert "run_id" not in current()  # the copied context did not leak into this one


def test_bind_refuses_unknown_fields():
    with pytest.raises(TypeError):
        bind(user_id="u")


def test_auto_is_text_on_a_terminal_and_json_otherwise():
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert resolve_format("auto", Terminal()) == "text"
    assert resolve_format("auto", io.StringIO()) == "json"
    assert resolve_format("text", io.StringIO()) == "text"


def test_pgserver_info_shows_only_at_debug(root_restored):
    stream = io.StringIO()
    configure_logging(level="INFO", log_format="json", node_id="n", stream=stream)
    logging.getLogger("pgserver").info("Running commandline: initdb ...")
    logging.getLogger("pgserver").warning("Failed to stop server, killing it instead.")
    logging.getLogger("web.demo").info("ours")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(line["logger"], line["level"]) for line in lines] == [
        ("pgserver", "WARNING"), ("web.demo", "INFO"),
    ]  # fmt: skip

    stream = io.StringIO()
    configure_logging(level="DEBUG", log_format="json", node_id="n", stream=stream)
    logging.getLogger("pgserver").info("Running commandline: initdb ...")
    (line,) = [json.loads(x) for x in stream.getvalue().splitlines() if "initdb" in x]
    assert line["level"] == "DEBUG"
