"""A run's tool selection (create field ``tools``, runtime/tools/selection.py) through the
HTTP API, native engine against the scripted OpenAI server: the model is offered only the
selected tools, a call of another tool is refused without running, and bad selections are
422s."""

from __future__ import annotations

import pytest

from tests.support.openai_script import call
from tests.support.patches import heading_patch
from tests.support.runs import create_run, read_stream, runs_url, types
from tests.support.scripted_openai import text_reply


@pytest.fixture
def settings(make_settings):
    return make_settings(scripted_engine_enabled=True)


async def test_a_run_offers_only_its_tools_and_refuses_the_others(
    client,
    owner,
    native_app,
    scripted_openai,
):
    app, _ = native_app
    scripted_openai.push(
        call("coding_agent_delete_file", path="src/App.tsx"),  # not offered
        call("coding_agent_apply_patch", patch=heading_patch("Runwright Chat")),
        text_reply("Renamed the heading."),
    )
    run = await create_run(
        client, app["id"], owner.headers, input="Rename the heading",
        tools=["coding_agent_apply_patch", "read_file_range", "apply_patch"],
    )  # fmt: skip
    # Catalogue order, function names, no duplicates; the run object shows the selection.
    assert run["tools"] == ["coding_agent_read_file_range", "coding_agent_apply_patch"]

    _, events = await read_stream(client, app["id"], run["run_id"], owner.headers)

    offered = [t["function"]["name"] for t in scripted_openai.bodies[0]["tools"]]
    assert offered == ["coding_agent_read_file_range", "coding_agent_apply_patch"]
    refused = next(e["data"] for e in events if e["data"]["event"] == "tool.failed")
    assert refused["payload"]["tool"] == "coding_agent_delete_file"
    assert refused["payload"]["output"]["code"] == "TOOL_NOT_ALLOWED"
    assert types(events)[-3:] == ["revision.created", "checkpoint.created", "run.completed"]
    state = await (await client.get(f"/admin/apps/{app['id']}/builder/state",
                                    headers=owner.headers)).get_json()  # fmt: skip
    files = state["current_draft_revision"]["files"]
    assert "<h1>Runwright Chat</h1>" in files["src/App.tsx"]  # patched, not deleted
    got = await client.get(runs_url(app["id"], f"/{run['run_id']}"), headers=owner.headers)
    assert (await got.get_json())["tools"] == run["tools"]


async def test_without_tools_every_tool_is_offered(
    client,
    owner,
    native_app,
    scripted_openai,
):
    app, _ = native_app
    scripted_openai.push(text_reply("Hello."))
    run = await create_run(client, app["id"], owner.headers, input="Hi")
    assert run["tools"] is None
    await read_stream(client, app["id"], run["run_id"], owner.headers)
    assert len(scripted_openai.bodies[0]["tools"]) == 16


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"tools": ["apply_patch", "teleport"]}, "unknown tools: teleport"),
        ({"tools": []}, "at least 1 item"),
        ({"tools": ["apply_patch"], "engine": "scripted", "script": []},
         "tools is only allowed with the native engine"),
    ],
)  # fmt: skip
async def test_a_bad_selection_is_a_422(client, owner, native_app, body, message):
    app, _ = native_app
    response = await client.post(
        runs_url(app["id"]), json={"input": "Hi", **body}, headers=owner.headers
    )
    assert response.status_code == 422
    detail = (await response.get_json())["detail"]
    assert detail[0]["loc"] == ["body", "tools"]
    assert message in detail[0]["msg"]
