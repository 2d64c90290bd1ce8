"""Fair shares between tenants (issue 9.4, docs/security.md): per-tenant caps on open
streams, on executing runs and on queued runs, through the public API."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.runs import LiveStream, create_run, runs_url, types, wait_status

HANG = [{"hang": True}]


@pytest.fixture
def settings(make_settings):
    return make_settings(scripted_engine_enabled=True, max_streams_per_tenant=2)


async def _new_app(client, headers, slug):
    response = await client.post("/admin/apps", json={"name": slug, "slug": slug}, headers=headers)
    assert response.status_code == 200, await response.get_data(as_text=True)
    return await response.get_json()


async def test_streams_beyond_the_tenant_cap_get_429_and_others_are_unaffected(
    client, seed, owner, app_and_draft
):
    app, _ = app_and_draft
    run = await create_run(client, app["id"], owner.headers, input="x", engine="scripted",
                           script=HANG)  # fmt: skip
    url = runs_url(app["id"], f"/{run['run_id']}/stream")
    async with LiveStream(client, url, owner.headers) as first:
        await first.until(lambda ev: "run.accepted" in types(ev))
        async with LiveStream(client, url, owner.headers) as second:
            await second.until(lambda ev: "run.accepted" in types(ev))
            refused = await client.get(url, headers=owner.headers)
            assert refused.status_code == 429
            assert refused.headers["Retry-After"].isdigit()
            detail = (await refused.get_json())["detail"]
            assert detail["code"] == "TOO_MANY_STREAMS"

            # Another tenant's streams are counted on their own.
            other = await seed.tenant_admin()
            other_headers = other.headers
            other_app = await _new_app(client, other_headers, "other-app")
            other_run = await create_run(client, other_app["id"], other_headers, input="x",
                                         engine="scripted", script=[{"delta": "hi"}])  # fmt: skip
            other_url = runs_url(other_app["id"], f"/{other_run['run_id']}/stream")
            response = await client.get(other_url, headers=other_headers)
            assert response.status_code == 200
            assert "run.completed" in await response.get_data(as_text=True)

    # Both streams closed: their slots come back (the release runs when each body ends).
    deadline = asyncio.get_running_loop().time() + 20
    while True:
        async with LiveStream(client, url, owner.headers) as again:
            events = await again.until(lambda ev: bool(ev) or again.ended, within=20)
            if events:
                assert types(events)[0] == "run.accepted"
                break
        assert asyncio.get_running_loop().time() < deadline, "stream slots never came back"
        await asyncio.sleep(0.05)
    cancel = await client.post(runs_url(app["id"], f"/{run['run_id']}/cancel"),
                               headers=owner.headers)  # fmt: skip
    assert cancel.status_code == 200


async def _status(client, app_id, run_id, headers):
    response = await client.get(runs_url(app_id, f"/{run_id}"), headers=headers)
    return (await response.get_json())["status"]


class TestRunCaps:
    """Executing and queued runs per tenant: beyond the live cap a tenant's runs wait
    without holding back another tenant; beyond the queue cap a create answers 429."""

    @pytest.fixture
    def settings(self, make_settings):
        return make_settings(
            scripted_engine_enabled=True,
            max_live_runs=3,
            max_live_runs_per_tenant=1,
            max_queued_runs_per_tenant=2,
        )

    async def test_caps(self, client, seed, owner, app_and_draft):
        app, _ = app_and_draft
        a_runs = []
        for _ in range(3):
            a_runs.append(
                await create_run(
                    client, app["id"], owner.headers, input="x", engine="scripted", script=HANG
                )  # fmt: skip
            )
            if len(a_runs) == 1:  # executing: it no longer counts as queued
                await wait_status(client, app["id"], a_runs[0]["run_id"], owner.headers,
                                  {"running"})  # fmt: skip
        # Beyond the queue cap: 429 with Retry-After; nothing was created.
        refused = await client.post(runs_url(app["id"]), headers=owner.headers,
                                    json={"input": "x", "engine": "scripted"})  # fmt: skip
        assert refused.status_code == 429
        assert int(refused.headers["Retry-After"]) > 0
        assert (await refused.get_json())["detail"]["code"] == "TENANT_QUEUE_FULL"
        listed = await client.get(runs_url(app["id"]), headers=owner.headers)
        assert len(await listed.get_json()) == 3

        # Tenant B runs at once although the node has A's runs waiting.
        other = await seed.tenant_admin()
        other_app = await _new_app(client, other.headers, "b-app")
        b_run = await create_run(client, other_app["id"], other.headers, input="x",
                                 engine="scripted", script=[{"delta": "b"}])  # fmt: skip
        await wait_status(client, other_app["id"], b_run["run_id"], other.headers, {"completed"})
        # A stays at one executing run: the others wait queued.
        for run in a_runs[1:]:
            assert await _status(client, app["id"], run["run_id"], owner.headers) == "queued"

        # A's slot frees: its next run starts, in order.
        cancel = await client.post(runs_url(app["id"], f"/{a_runs[0]['run_id']}/cancel"),
                                   headers=owner.headers)  # fmt: skip
        assert (await cancel.get_json())["status"] == "cancelled"
        await wait_status(client, app["id"], a_runs[1]["run_id"], owner.headers, {"running"})
        assert await _status(client, app["id"], a_runs[2]["run_id"], owner.headers) == "queued"
        for run in a_runs[1:]:
            response = await client.post(runs_url(app["id"], f"/{run['run_id']}/cancel"),
                                         headers=owner.headers)  # fmt: skip
            assert response.status_code == 200
