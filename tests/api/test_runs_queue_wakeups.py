"""What wakes a queued run when no poll would (docs/design.md 9): a freed slot claims the
run that waited for it, whether it waited for a slot of this node or for its tenant's turn
(the cap on a tenant's executing runs). The periodic claim poll and the listener's slow poll
(which asks for a claim round too) are set to a minute here, so only the Supervisor's own
rounds can start the waiting run within the test's budget."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.api import create_app_via_api
from tests.support.runs import create_run, runs_url, wait_status

HANG = [{"hang": True}]


@pytest.fixture
def settings(make_settings):
    return make_settings(
        scripted_engine_enabled=True, max_live_runs=2, max_live_runs_per_tenant=1,
        claim_poll_seconds=60.0, notify_poll_seconds=60.0,
    )  # fmt: skip


async def _run(client: Any, app: dict[str, Any], who: Any, script: list[Any]) -> dict[str, Any]:
    return await create_run(client, app["id"], who.headers, input="x", engine="scripted",
                            script=script)  # fmt: skip


async def _cancel(client: Any, app: dict[str, Any], who: Any, run: dict[str, Any]) -> None:
    response = await client.post(runs_url(app["id"], f"/{run['run_id']}/cancel"),
                                 headers=who.headers)  # fmt: skip
    assert response.status_code == 200


async def test_a_run_passed_over_for_its_tenants_cap_starts_when_its_tenant_run_ends(
    client: Any, owner: Any, app_and_draft: Any
) -> None:
    app, _ = app_and_draft
    first = await _run(client, app, owner, HANG)
    await wait_status(client, app["id"], first["run_id"], owner.headers, {"running"})
    second = await _run(client, app, owner, [{"delta": "second"}])  # a slot is free: the cap
    waiting = await wait_status(client, app["id"], second["run_id"], owner.headers, {"queued"})
    assert waiting["started_at"] is None
    await _cancel(client, app, owner, first)
    done = await wait_status(client, app["id"], second["run_id"], owner.headers, {"completed"})
    assert done["status"] == "completed"


async def test_a_run_created_while_every_slot_is_busy_starts_when_one_frees(
    client: Any, seed: Any
) -> None:
    tenants = [await seed.tenant_admin(role="owner") for _ in range(3)]
    apps = [(await create_app_via_api(client, who.headers))[0] for who in tenants]
    busy = []
    for who, app in zip(tenants[:2], apps[:2], strict=True):
        run = await _run(client, app, who, HANG)
        await wait_status(client, app["id"], run["run_id"], who.headers, {"running"})
        busy.append(run)
    late = await _run(client, apps[2], tenants[2], [{"delta": "late"}])
    waiting = await wait_status(client, apps[2]["id"], late["run_id"], tenants[2].headers,
                                {"queued"})  # fmt: skip
    assert waiting["started_at"] is None
    await _cancel(client, apps[0], tenants[0], busy[0])
    done = await wait_status(client, apps[2]["id"], late["run_id"], tenants[2].headers,
                             {"completed"})  # fmt: skip
    assert done["status"] == "completed"
    await _cancel(client, apps[1], tenants[1], busy[1])
