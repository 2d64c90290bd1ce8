"""A session's history is compacted by the contract 5 budget (docs/design.md 10): with a small
``RUNWRIGHT_MESSAGE_BUDGET_CHARS`` the follow-up's model gets the newest turns that fit and
the contract's "Context compacted" note, through the HTTP API."""

from __future__ import annotations

import pytest

from tests.support.runs import create_run, wait_status
from tests.support.scripted_openai import text_reply


@pytest.fixture
def settings(make_settings):
    return make_settings(message_budget_chars=600)


async def test_the_follow_ups_history_is_compacted_to_the_budget(
    client,
    owner,
    native_app,
    scripted_openai,
):
    app, _ = native_app
    response = await client.post(f"/admin/apps/{app['id']}/coding-agent/sessions", json={},
                                 headers=owner.headers)  # fmt: skip
    sid = (await response.get_json())["session_id"]
    scripted_openai.push(text_reply("B" * 300), text_reply("ok"))
    for prompt in ("A" * 400, "what next"):
        run = await create_run(client, app["id"], owner.headers, input=prompt, session_id=sid)
        await wait_status(client, app["id"], run["run_id"], owner.headers, {"completed"})
    # 400 + 300 + 9 characters exceed 600: the walk keeps the newest prompt and the reply,
    # and drops the first prompt (contract 5)
    assert scripted_openai.bodies[1]["messages"][1:] == [
        {"role": "system",
         "content": "Context compacted: 1 earlier message(s) omitted to stay within budget."},
        {"role": "assistant", "content": "B" * 300},
        {"role": "user", "content": "what next"},
    ]  # fmt: skip
