"""JSON log lines of a run carry its ids: lines from the request (request id, tenant, app,
run), from the run's actor thread (run, tenant, app) and from the engine task the actor
started on the loop (the same ids, through the context the task was created in)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from runtime.logs import build_handler
from tests.support.api import create_app_via_api
from tests.support.fixtures_openai import dead_openai_url  # noqa: F401
from tests.support.runs import create_run, read_stream, runs_url

NODE = "node-under-test"


async def _lines_once(
    json_lines: Callable[[], list[dict[str, Any]]],
    done: Callable[[list[dict[str, Any]]], bool],
    within: float = 20.0,
) -> list[dict[str, Any]]:
    """The lines once ``done(lines)`` holds: the actor logs "run ended" after the terminal
    event is stored and published, so a stream can end a moment before that line."""
    deadline = asyncio.get_running_loop().time() + within
    while not done(lines := json_lines()):
        assert asyncio.get_running_loop().time() < deadline, lines
        await asyncio.sleep(0.02)
    return lines


def _ended(status: str, count: int = 1) -> Callable[[list[dict[str, Any]]], bool]:
    message = f"run ended {status}"
    return lambda lines: sum(line["message"] == message for line in lines) >= count


@pytest.fixture
def json_lines() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """A JSON handler on the root logger at INFO for the test; returns a reader of the
    lines written so far (each must parse)."""
    stream = io.StringIO()
    handler = build_handler(level="INFO", log_format="json", node_id=NODE, stream=stream)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


async def test_the_lines_of_a_failing_native_run_carry_its_ids(
    client,
    owner,
    make_model,
    dead_openai_url,  # noqa: F811
    json_lines,
):
    await make_model(owner.tenant_id, default=True, base_url=dead_openai_url)
    app, _ = await create_app_via_api(client, owner.headers)
    response = await client.post(
        runs_url(app["id"]), json={"input": "hello"},
        headers={**owner.headers, "X-Request-ID": "create-42"},
    )  # fmt: skip
    assert response.status_code == 200
    run_id = (await response.get_json())["run_id"]
    _, events = await read_stream(client, app["id"], run_id, owner.headers)
    assert events[-1]["data"]["event"] == "run.failed"

    ids = {"run_id": run_id, "tenant_id": str(owner.tenant_id), "app_id": app["id"]}
    lines = await _lines_once(json_lines, _ended("failed"))
    assert all(line["node_id"] == NODE for line in lines)

    def one(predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        found = [line for line in lines if predicate(line)]
        assert len(found) == 1, lines
        return found[0]

    create = one(lambda line: line.get("request_id") == "create-42")
    assert create["logger"] == "runwright.access" and create["status"] == 200
    assert create["tenant_id"] == ids["tenant_id"] and create["app_id"] == ids["app_id"]
    # The actor thread's lines.
    started = one(lambda line: line["message"] == "run started (attempt 0)")
    ended = one(lambda line: line["message"] == "run ended failed")
    # The engine task on the loop (started by the actor): the model endpoint is down.
    model = one(lambda line: line["logger"] == "runtime.engines.native")
    assert model["level"] == "WARNING" and "connection" in model["message"]
    for line in (started, ended, model):
        assert {key: line.get(key) for key in ids} == ids, line
        assert "request_id" not in line  # the run outlives the request that created it
    assert started["engine"] == "native"


async def test_lines_of_other_runs_do_not_carry_this_runs_ids(client, owner, json_lines):
    app, _ = await create_app_via_api(client, owner.headers)
    first = await create_run(client, app["id"], owner.headers, input="a", engine="scripted",
                             script=[{"delta": "x"}])  # fmt: skip
    await read_stream(client, app["id"], first["run_id"], owner.headers)
    second = await create_run(client, app["id"], owner.headers, input="b", engine="scripted",
                              script=[{"delta": "y"}])  # fmt: skip
    await read_stream(client, app["id"], second["run_id"], owner.headers)
    lines = await _lines_once(json_lines, _ended("completed", count=2))
    ended = [line for line in lines if line["message"] == "run ended completed"]
    assert sorted(line["run_id"] for line in ended) == sorted([first["run_id"], second["run_id"]])
