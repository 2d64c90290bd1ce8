"""``runwright demo``'s HTTP side (it drives the API with runwright.client) against a
scripted OpenAI-compatible model on loopback, so it runs without the [local] extra: a tool
call, an edit, a revision and its diff, through a real Hypercorn server."""

from __future__ import annotations

import io

from storage import models as models_store
from storage.database import Database
from storage.models import BindingSpec
from tests.support.fixtures_openai import scripted_openai  # noqa: F401
from tests.support.scripted_openai import ScriptedToolCall, text_reply, tool_call_reply
from web.demo import run_demo

EDIT = {"path": "src/App.tsx", "old_text": "<h1>Chat</h1>", "new_text": "<h1>Runwright Chat</h1>"}


async def test_demo_drives_a_native_run_through_the_client(
    settings,
    database_url,
    scripted_openai,  # noqa: F811
):
    db = await Database.connect(database_url, min_size=1, max_size=1)
    try:
        await models_store.create_model(
            db, tenant_id=None, name="scripted", is_default=True,
            bindings=[BindingSpec(provider="openai", provider_model_id="scripted-model",
                                  base_url=scripted_openai.base_url)],
        )  # fmt: skip
    finally:
        await db.close()
    scripted_openai.push(
        tool_call_reply(ScriptedToolCall("coding_agent_edit_file", EDIT)),
        text_reply("Renamed the heading."),
    )
    out = io.StringIO()
    final = await run_demo(settings, "Rename the heading", out=out)
    printed = out.getvalue()
    assert final["status"] == "completed", printed
    assert final["result_revision_id"] is not None
    assert "+        <h1>Runwright Chat</h1>" in printed
    assert "<- coding_agent_edit_file ok (changed src/App.tsx)" in printed
    # The demo offers its two tools only (web.demo.DEMO_TOOLS).
    offered = [t["function"]["name"] for t in scripted_openai.bodies[0]["tools"]]
    assert offered == ["coding_agent_read_file_range", "coding_agent_edit_file"]
    assert "Tools offered: coding_agent_read_file_range, coding_agent_edit_file" in printed
