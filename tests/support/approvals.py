"""Helpers of the approval API tests: a native run paused on a tool call, and a resume."""

from __future__ import annotations

from typing import Any, NamedTuple

from tests.support.runs import create_run, read_stream, runs_url, types


async def paused(client, app, owner, **create: Any) -> tuple[dict[str, Any], list[dict]]:
    """Create a run, read its stream to the pause on an approval; returns (run, events):
    ``events[-2]`` is ``approval.requested``, ``events[-1]`` the paused ``run.completed``."""
    run = await create_run(client, app["id"], owner.headers, **create)
    _, events = await read_stream(client, app["id"], run["run_id"], owner.headers)
    assert types(events)[-2:] == ["approval.requested", "run.completed"], types(events)
    assert events[-1]["data"]["payload"]["status"] == "paused"
    return run, events


async def resume(client, app, run, owner, **body: Any):
    """``POST .../resume`` with ``body``; returns the response."""
    return await client.post(
        runs_url(app["id"], f"/{run['run_id']}/resume"), json=body, headers=owner.headers
    )


async def draft_file(client, app, owner, path: str = "src/App.tsx") -> str:
    """A file of the app's current draft."""
    response = await client.get(f"/admin/apps/{app['id']}/builder/state", headers=owner.headers)
    state = await response.get_json()
    return str(state["current_draft_revision"]["files"][path])


class PausedRun(NamedTuple):
    """A run paused on an approval request (the ``paused_on_patch`` fixture):
    ``app, run, events, request_id = paused_on_patch``.

    Attributes:
        app: the app (JSON object); run: the create response; events: its stream up to the
        pause (``events[-1]`` is the paused ``run.completed``); request_id: the pending
        request's id.
    """

    app: dict[str, Any]
    run: dict[str, Any]
    events: list[dict[str, Any]]
    request_id: str
