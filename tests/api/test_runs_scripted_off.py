"""The scripted engine is off by default: asking for it is a 422 like any unknown engine."""

from __future__ import annotations

import pytest

from tests.support.runs import runs_url


@pytest.fixture
def settings(make_settings):
    return make_settings()  # scripted_engine_enabled defaults to False


async def test_scripted_engine_is_rejected_when_disabled(client, owner, app_and_draft):
    app, _ = app_and_draft
    response = await client.post(
        runs_url(app["id"]), json={"input": "x", "engine": "scripted"}, headers=owner.headers
    )
    assert response.status_code == 422
    detail = (await response.get_json())["detail"]
    assert detail[0]["loc"] == ["body", "engine"]


async def test_a_script_needs_the_scripted_engine(client, owner, app_and_draft):
    app, _ = app_and_draft
    response = await client.post(
        runs_url(app["id"]), json={"input": "x", "script": [{"delta": "a"}]}, headers=owner.headers
    )
    assert response.status_code == 422
