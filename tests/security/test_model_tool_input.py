"""A prompt-injected model's odd tool-call arguments, through the API and the native engine
against the scripted OpenAI server: JSON's non-finite numbers and paths with a NUL or an
unpaired surrogate are refused or survive, and never wedge the run's event log."""

from __future__ import annotations

import pytest

from runtime import model_client
from storage import models as models_store
from storage.models import BindingSpec
from tests.support.api import create_app_via_api
from tests.support.fixtures_openai import scripted_openai  # noqa: F401
from tests.support.runs import create_run, read_stream, runs_url
from tests.support.scripted_openai import ScriptedToolCall, text_reply, tool_call_reply


@pytest.fixture
def settings(make_settings):
    # The scripted model listens on loopback, which the default egress policy refuses.
    return make_settings(egress_allowed_networks=("127.0.0.0/8",), enable_legacy_write_file=True)


@pytest.fixture
async def native_app(client, db, owner, scripted_openai):  # noqa: F811
    await models_store.create_model(
        db, tenant_id=owner.tenant_id, name="scripted", is_default=True, status="active",
        bindings=[BindingSpec(provider="openai", provider_model_id="m",
                              base_url=scripted_openai.base_url)],
    )  # fmt: skip
    app, _ = await create_app_via_api(client, owner.headers)
    return app


def _call(name: str, arguments: dict[str, object] | str):
    return tool_call_reply(ScriptedToolCall(f"coding_agent_{name}", arguments))


def _tool_results(events):
    return [e["data"] for e in events if e["data"]["event"] in ("tool.completed", "tool.failed")]


async def test_non_finite_numbers_in_arguments_do_not_wedge_the_event_log(
    client,
    owner,
    native_app,
    scripted_openai,  # noqa: F811
):
    """Python's ``json`` reads ``NaN`` / ``Infinity`` in a model's arguments; the
    ``tool.started`` event echoing them used to be refused by Postgres's ``json`` type,
    and the event writer retried that batch forever (the run never ended)."""
    scripted_openai.push(
        _call(
            "read_file_range",
            '{"path": "src/App.tsx", "start_line": NaN, "end_line": -Infinity}',
        ),
        text_reply("Done."),
    )
    run = await create_run(client, native_app["id"], owner.headers, input="Read it")
    _, events = await read_stream(client, native_app["id"], run["run_id"], owner.headers)
    assert events[-1]["data"]["event"] == "run.completed"
    started = next(e["data"] for e in events if e["data"]["event"] == "tool.started")
    assert started["payload"]["input"]["start_line"] == "NaN"
    assert started["payload"]["input"]["end_line"] == "-Infinity"
    # The stored log replays identically.
    _, again = await read_stream(client, native_app["id"], run["run_id"], owner.headers)
    assert [e["data"] for e in again] == [e["data"] for e in events]


@pytest.mark.parametrize(
    "path", ["src/App.tsx\u0000.txt", "src/\ud800.ts", "src/\udfffApp.tsx"], ids=["nul", "hi", "lo"]
)
async def test_paths_with_nul_or_unpaired_surrogates_are_a_policy_refusal(
    client,
    owner,
    native_app,
    scripted_openai,  # noqa: F811
    path,
):
    """They used to reach the OS and fail with its exception text (``embedded null byte``,
    a ``UnicodeEncodeError`` giving the server path's length)."""
    scripted_openai.push(
        _call("read_file", {"path": path}),
        _call("write_file", {"path": path, "content": "x"}),
        _call("delete_file", {"path": path}),
        text_reply("Done."),
    )
    run = await create_run(client, native_app["id"], owner.headers, input="Go")
    _, events = await read_stream(client, native_app["id"], run["run_id"], owner.headers)
    results = _tool_results(events)
    assert len(results) == 3
    for result in results:
        assert result["event"] == "tool.failed"
        output = result["payload"]["output"]
        assert output["code"] == "BUILDER_PATCH_POLICY_VIOLATION", output
        assert "surrogate" in output["error"] and "NUL" in output["error"]
    assert events[-1]["data"]["event"] == "run.completed"


@pytest.mark.parametrize(
    "new_text", ['"x\\u0000y"', '"x\\ud800"', '"x", "n": NaN'], ids=["nul", "surrogate", "nan"]
)
async def test_a_paused_call_with_unstorable_arguments_pauses_and_resumes(
    client,
    owner,
    native_app,
    scripted_openai,  # noqa: F811
    new_text,
):
    """The paused run's checkpoint and pending approval are ``jsonb``, which refuses
    ``\\u0000``, unpaired surrogates and ``NaN``: the pause's write used to be retried
    forever (the stream never ended). They are stored as U+FFFD and ``"NaN"``."""
    scripted_openai.push(
        _call(
            "edit_file",
            '{"path": "src/App.tsx", "old_text": "<h1>Chat</h1>", "new_text": ' + new_text + "}",
        ),
        text_reply("Done."),
    )
    app_id = native_app["id"]
    run = await create_run(client, app_id, owner.headers, input="Edit", approval_policy="patches")
    _, events = await read_stream(client, app_id, run["run_id"], owner.headers)
    assert events[-1]["data"]["payload"]["status"] == "paused"
    got = await client.get(runs_url(app_id, f"/{run['run_id']}"), headers=owner.headers)
    pending = (await got.get_json())["pending_approval"]
    assert pending["arguments"]["new_text"].startswith("x")
    assert "\x00" not in pending["arguments"]["new_text"]
    decided = await client.post(
        runs_url(app_id, f"/{run['run_id']}/resume"),
        headers=owner.headers,
        json={"approval": {"request_id": pending["request_id"], "decision": "reject"}},
    )
    assert decided.status_code == 200, await decided.get_data(as_text=True)
    _, events = await read_stream(client, app_id, run["run_id"], owner.headers)
    assert events[-1]["data"]["event"] == "run.completed"
    assert events[-1]["data"]["payload"]["status"] == "completed"


async def test_a_response_with_too_many_tool_calls_fails_the_run_without_running_them(
    client,
    owner,
    native_app,
    scripted_openai,  # noqa: F811
):
    """A tenant's endpoint asking for thousands of tool runs in one turn (or streaming
    arguments without end) is cut off at the model client's bounds: the run fails with
    one clear error and no tool runs."""
    calls = [
        ScriptedToolCall("coding_agent_list_files", {}, pieces=1)
        for _ in range(model_client.MAX_TOOL_CALLS + 1)
    ]
    scripted_openai.push(tool_call_reply(*calls))
    run = await create_run(client, native_app["id"], owner.headers, input="Go")
    _, events = await read_stream(client, native_app["id"], run["run_id"], owner.headers)
    assert not any(e["data"]["event"].startswith("tool.") for e in events)
    last = events[-1]["data"]
    assert last["event"] == "run.failed"
    assert "larger than this server accepts" in last["payload"]["error"]


async def test_a_response_with_endless_text_fails_the_run(
    client,
    owner,
    native_app,
    scripted_openai,  # noqa: F811
):
    """Text beyond the bound ends the run the same way (it used to be held in memory)."""
    piece = "x" * 100_000
    count = model_client.MAX_RESPONSE_CHARS // len(piece) + 1
    scripted_openai.push(text_reply(piece * count, chunks=[piece] * count))
    run = await create_run(client, native_app["id"], owner.headers, input="Go")
    _, events = await read_stream(client, native_app["id"], run["run_id"], owner.headers, within=60)
    last = events[-1]["data"]
    assert last["event"] == "run.failed"
    assert "larger than this server accepts" in last["payload"]["error"]
