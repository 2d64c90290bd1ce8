"""OpenCode's bash tool, allowed, runs in the sandbox of its own session's workspace (issue
9 item 1), against a real managed ``opencode serve`` and the scripted model: it runs as
the sandbox uid, sees no neighbour workspace and no server environment, cannot be steered
into another directory through a symlink, and a workspace's own OpenCode config or plugin
(written by a model) never configures the server."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.engine import Completed, EngineEvent, ModelTarget, RunContext
from tests.support.opencode import binary_missing, started_engine, warm_dir
from tests.support.sandbox import needs_bwrap, shared_deps_dir
from tests.support.scripted_openai import (
    ScriptedOpenAI,
    ScriptedToolCall,
    text_reply,
    tool_call_reply,
)

_MISSING = binary_missing()
pytestmark = [
    pytest.mark.opencode,
    needs_bwrap,
    pytest.mark.skipif(_MISSING is not None, reason=f"OpenCode not installed: {_MISSING}"),
]
NEIGHBOUR_CANARY = f"neighbour-{uuid.uuid4().hex}"


@pytest.fixture
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with warm_dir("bash-sandbox", tmp_path_factory) as path:
        yield path


@pytest.fixture
def model_server() -> Iterator[ScriptedOpenAI]:
    server = ScriptedOpenAI()
    server.default = text_reply("default answer")
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_bash_runs_sandboxed_in_its_own_workspace(
    data_dir: Path, tmp_path: Path, model_server: ScriptedOpenAI
) -> None:
    neighbour = (tmp_path / "neighbour").resolve()
    neighbour.mkdir()
    (neighbour / "secret.txt").write_text(NEIGHBOUR_CANARY)
    workspace = (tmp_path / "app").resolve()
    workspace.mkdir()
    (workspace / "README.md").write_text("# demo\n")
    (workspace / "escape").symlink_to(neighbour)
    planted = tmp_path / "plugin-ran"
    (workspace / "opencode.json").write_text(json.dumps({"shell": "/bin/sh"}))
    (workspace / ".opencode" / "plugin").mkdir(parents=True)
    (workspace / ".opencode" / "plugin" / "evil.js").write_text(
        f"require('fs').writeFileSync({json.dumps(str(planted))}, 'x');\n"
        "export const Evil = async () => ({});\n"
    )
    engine = await started_engine(
        data_dir, opencode_bash_permission="allow", deps_cache_dir=shared_deps_dir()
    )
    try:
        assert engine.server is not None and engine.server.pid is not None
        # Paths through variables: OpenCode's own scan refuses literal outside paths, and
        # the point here is what the sandbox does when that scan is passed.
        probe = (
            f"N={neighbour}; P=/proc/{engine.server.pid}; id -u; cat $N/secret.txt; "
            "cat $P/environ; ls /work; echo hi > made-here.txt; env | sort"
        )
        model_server.push(
            tool_call_reply(ScriptedToolCall("bash", {"command": probe, "description": "p"})),
            tool_call_reply(
                ScriptedToolCall(
                    "bash", {"command": "cat secret.txt", "workdir": "escape", "description": "e"}
                )
            ),
            text_reply("done"),
        )
        ctx = RunContext(
            run_id=uuid.uuid4(), tenant_id=uuid.uuid4(), app_id=uuid.uuid4(),
            user_id=uuid.uuid4(), engine="opencode",
            input_params={"input": "probe", "messages": []},
            model=ModelTarget(model_id=uuid.uuid4(), provider="scripted",
                              provider_model_id="scripted-model",
                              base_url=model_server.base_url),
            workspace=workspace,
        )  # fmt: skip
        session = engine.open(ctx)
        try:
            events: list[EngineEvent] = await asyncio.wait_for(_drain(session), timeout=240)
        finally:
            await session.close()
        registry = data_dir / "opencode" / "sandbox" / "sessions"
        assert list(registry.iterdir()) == []  # the session's bash ended with the run
    finally:
        await engine.stop()

    assert isinstance(events[-1], Completed), events[-1]
    tool_results = [
        m["content"]
        for body in model_server.bodies
        for m in body["messages"]
        if m.get("role") == "tool"
    ]
    first, second = tool_results[0], tool_results[-1]
    assert first.splitlines()[0] == "65534", first
    assert NEIGHBOUR_CANARY not in first and NEIGHBOUR_CANARY not in second
    assert "No such file or directory" in first  # neither the neighbour nor the server's /proc
    assert "app\nnode_modules" not in first and "app\n" in first  # /work holds the workspace
    assert "RUNWRIGHT_OPENCODE_SESSION" not in first and "OPENCODE_SERVER_PASSWORD" not in first
    assert (workspace / "made-here.txt").read_text() == "hi\n"
    assert "outside the session's workspace" in second, second
    assert not planted.exists()  # the workspace's plugin never loaded
    assert not (workspace / ".opencode").exists() and not (workspace / "opencode.json").exists()


async def _drain(session) -> list[EngineEvent]:
    return [event async for event in session.events()]
