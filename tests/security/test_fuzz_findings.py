"""Defects the schemathesis run (test_schemathesis.py) found, pinned as plain tests."""

from __future__ import annotations

import asyncio

from tests.support.runs import create_run, read_stream, runs_url


async def test_cursor_beyond_a_finished_runs_log_ends_the_stream(client, owner, app_and_draft):
    """``?after=`` or ``Last-Event-ID`` past the last event of a finished run: the stream
    ends at once with no event (it used to stay open until the client gave up)."""
    app, _ = app_and_draft
    run = await create_run(client, app["id"], owner.headers, input="x", engine="scripted",
                           script=[{"delta": "hi"}])  # fmt: skip
    _, events = await read_stream(client, app["id"], run["run_id"], owner.headers)
    last = events[-1]["id"]
    assert events[-1]["data"]["event"] == "run.completed"
    for cursor in (last, last + 1, 2**31 - 1):
        _, after = await read_stream(client, app["id"], run["run_id"], owner.headers,
                                     after=cursor, within=10)  # fmt: skip
        assert after == []
        response = await asyncio.wait_for(
            client.get(runs_url(app["id"], f"/{run['run_id']}/stream?after={cursor}"),
                       headers=owner.headers),
            10,
        )  # fmt: skip
        assert response.status_code == 200
        assert "data:" not in await asyncio.wait_for(response.get_data(as_text=True), 10)
