"""An idle stream carries keep-alive comments, so proxies and clients see it is alive."""

from __future__ import annotations

import pytest

from tests.support.runs import LiveStream, create_run, runs_url


@pytest.fixture
def settings(make_settings):
    return make_settings(scripted_engine_enabled=True, sse_keepalive_seconds=0.1)


async def test_idle_stream_gets_keepalive_comments(client, owner, app_and_draft):
    app, _ = app_and_draft
    run = await create_run(client, app["id"], owner.headers, input="x", engine="scripted",
                           script=[{"hang": True}])  # fmt: skip
    url = runs_url(app["id"], f"/{run['run_id']}/stream")
    async with LiveStream(client, url, owner.headers) as stream:
        await stream.until(lambda _: stream.text.count(": keep-alive\n\n") >= 2)
    await client.post(runs_url(app["id"], f"/{run['run_id']}/cancel"), headers=owner.headers)
