"""Completion webhooks through the HTTP API (issue 12 items 5 and 6, README "Webhooks").

A real receiver on loopback (the operator allows 127.0.0.0/8 in these settings, as the
test suite's default does), real Postgres, the scripted engine. Signatures are checked
against the documented scheme computed here, not with the server's own code.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import pytest

from storage.webhooks import WebhookStore
from tests.support.api import create_app_via_api, running_app
from tests.support.fixtures_openai import scripted_openai  # noqa: F401
from tests.support.runs import create_run, runs_url, wait_status
from tests.support.scripted_openai import ScriptedToolCall, tool_call_reply
from tests.support.seed import Seeder
from tests.support.webhook_receiver import (
    expected_signature,
    signature_parts,
    webhook_receiver,
)

FAST = {
    "scripted_engine_enabled": True,
    "webhook_retry_base_seconds": 0.05,
    "webhook_retry_max_seconds": 0.2,
    "webhook_poll_seconds": 0.05,
    "approval_sweep_seconds": 0.1,
}
TOLERANCE_SECONDS = 300


@pytest.fixture
def settings(make_settings):
    return make_settings(**FAST)


async def _new_secret(client, headers) -> dict[str, Any]:
    response = await client.post("/admin/webhooks/secret", headers=headers)
    assert response.status_code == 200, await response.get_data(as_text=True)
    return await response.get_json()


async def _tenant(client, services) -> tuple[Any, dict[str, Any], str]:
    """A new tenant admin, an app of theirs and the tenant's webhook secret."""
    owner = await Seeder(services.db, services.jwt_secret).tenant_admin()
    app, _ = await create_app_via_api(client, owner.headers)
    return owner, app, (await _new_secret(client, owner.headers))["secret"]


async def _deliveries(client, app_id: str, run_id: str, headers) -> list[dict[str, Any]]:
    response = await client.get(runs_url(app_id, f"/{run_id}/webhook-deliveries"), headers=headers)
    assert response.status_code == 200, await response.get_data(as_text=True)
    return await response.get_json()


async def _wait_deliveries(client, app_id, run_id, headers, states: list[str], within=60.0):
    """Poll the deliveries route until their states are ``states`` (tests only)."""
    deadline = time.monotonic() + within
    while True:
        found = await _deliveries(client, app_id, run_id, headers)
        if [d["state"] for d in found] == states:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"deliveries {found}, wanted states {states}")
        await asyncio.sleep(0.05)


def _assert_signed(request, secret: str) -> None:
    t, v1 = signature_parts(request.headers["runwright-signature"])
    assert v1 == [expected_signature(secret, t, request.body)]
    assert abs(time.time() - int(t)) <= TOLERANCE_SECONDS


def _signed_by(request, secret: str) -> bool:
    t, v1 = signature_parts(request.headers["runwright-signature"])
    return expected_signature(secret, t, request.body) in v1


async def test_a_receiver_failing_twice_gets_the_run_once_accepted(client, owner):
    app, _ = await create_app_via_api(client, owner.headers)
    secret = (await _new_secret(client, owner.headers))["secret"]
    async with webhook_receiver(["500", "drop"]) as receiver:
        run = await create_run(client, app["id"], owner.headers, input="hi", engine="scripted",
                               script=[{"delta": "done"}], webhook=receiver.url())  # fmt: skip
        final = await wait_status(client, app["id"], run["run_id"], owner.headers, {"completed"})
        [delivery] = await _wait_deliveries(
            client, app["id"], run["run_id"], owner.headers, ["delivered"]
        )
        got = await receiver.wait_for(3)
        # A second run's delivery arrives after it: the first was not sent a fourth time.
        other = await create_run(client, app["id"], owner.headers, input="again",
                                 engine="scripted", webhook=receiver.url())  # fmt: skip
        await receiver.wait_for(4)
        await _wait_deliveries(client, app["id"], other["run_id"], owner.headers, ["delivered"])
    first_three = got[:3]
    assert [r.headers["runwright-delivery"] for r in receiver.requests] == [
        delivery["delivery_id"]
    ] * 3 + [receiver.requests[3].headers["runwright-delivery"]]
    assert receiver.requests[3].headers["runwright-delivery"] != delivery["delivery_id"]
    for request in first_three:
        assert request.method == "POST" and request.path == "/hook"
        assert request.headers["content-type"] == "application/json"
        assert request.headers["runwright-event"] == "run.completed"
        _assert_signed(request, secret)
        assert request.json() == final  # the run object, as GET returns it
    assert len({r.body for r in first_three}) == 1  # the same bytes on every attempt
    assert delivery["state"] == "delivered" and delivery["attempts"] == 3
    assert delivery["event"] == "run.completed" and delivery["url"] == receiver.url()
    assert delivery["last_status_code"] == 200 and delivery["last_error"] is None
    assert delivery["delivered_at"] is not None and delivery["next_attempt_at"] is None


async def test_a_delivery_is_given_up_after_the_attempt_limit(make_settings):
    settings = make_settings(**FAST, webhook_max_attempts=2)
    async with (
        running_app(settings) as (client, services),
        webhook_receiver(["500", "500", "500"]) as receiver,
    ):
        owner, app, _ = await _tenant(client, services)
        run = await create_run(client, app["id"], owner.headers, input="hi", engine="scripted",
                               webhook=receiver.url())  # fmt: skip
        [delivery] = await _wait_deliveries(
            client, app["id"], run["run_id"], owner.headers, ["failed"]
        )
    assert delivery["attempts"] == 2 and len(receiver.requests) == 2
    assert delivery["last_status_code"] == 500
    # The receiver's answer, sanitised (control characters gone) and bounded.
    assert delivery["last_error"] == "HTTP 500: receiver broke down"


async def test_pause_and_each_end_are_delivered_separately(client, owner):
    app, _ = await create_app_via_api(client, owner.headers)
    secret = (await _new_secret(client, owner.headers))["secret"]
    async with webhook_receiver() as receiver:
        run = await create_run(client, app["id"], owner.headers, input="hi", engine="scripted",
                               script=[{"pause": {"question": "go on?"}}, {"hang": True}],
                               webhook=receiver.url())  # fmt: skip
        paused = await wait_status(client, app["id"], run["run_id"], owner.headers, {"paused"})
        [first] = await receiver.wait_for(1)
        cancel = await client.post(runs_url(app["id"], f"/{run['run_id']}/cancel"),
                                   headers=owner.headers)  # fmt: skip
        assert cancel.status_code == 200
        cancelled = await cancel.get_json()
        second = (await receiver.wait_for(2))[1]
        found = await _wait_deliveries(
            client, app["id"], run["run_id"], owner.headers, ["delivered", "delivered"]
        )
    assert first.headers["runwright-event"] == "run.paused" and first.json() == paused
    assert second.headers["runwright-event"] == "run.cancelled"
    assert second.json()["status"] == "cancelled" == cancelled["status"]
    assert [d["event"] for d in found] == ["run.paused", "run.cancelled"]
    assert found[0]["delivery_id"] != found[1]["delivery_id"]
    assert [r.headers["runwright-delivery"] for r in (first, second)] == [
        d["delivery_id"] for d in found
    ]
    _assert_signed(first, secret)
    _assert_signed(second, secret)


async def test_a_failed_run_is_delivered(client, owner):
    app, _ = await create_app_via_api(client, owner.headers)
    await _new_secret(client, owner.headers)
    async with webhook_receiver() as receiver:
        run = await create_run(client, app["id"], owner.headers, input="hi", engine="scripted",
                               script=[{"fail": "boom"}], webhook=receiver.url())  # fmt: skip
        [request] = await receiver.wait_for(1)
    assert request.headers["runwright-event"] == "run.failed"
    body = request.json()
    assert body["run_id"] == run["run_id"] and body["status"] == "failed"
    assert body["error"]


async def test_runs_without_a_webhook_deliver_nothing(client, owner):
    app, _ = await create_app_via_api(client, owner.headers)
    run = await create_run(client, app["id"], owner.headers, input="hi", engine="scripted")
    await wait_status(client, app["id"], run["run_id"], owner.headers, {"completed"})
    assert await _deliveries(client, app["id"], run["run_id"], owner.headers) == []


async def test_rotation_shows_the_secret_once_and_signs_with_the_new_one(client, owner):
    info = await client.get("/admin/webhooks/secret", headers=owner.headers)
    assert await info.get_json() == {"configured": False, "version": None, "created_at": None}
    first = await _new_secret(client, owner.headers)
    assert first["version"] == 1 and first["secret"].startswith("whsec_")
    app, _ = await create_app_via_api(client, owner.headers)
    async with webhook_receiver() as receiver:
        one = await create_run(client, app["id"], owner.headers, input="1", engine="scripted",
                               webhook=receiver.url())  # fmt: skip
        [before] = await receiver.wait_for(1)
        second = await _new_secret(client, owner.headers)
        two = await create_run(client, app["id"], owner.headers, input="2", engine="scripted",
                               webhook=receiver.url())  # fmt: skip
        after = (await receiver.wait_for(2))[1]
    assert second["version"] == 2 and second["secret"] != first["secret"]
    assert before.json()["run_id"] == one["run_id"] and after.json()["run_id"] == two["run_id"]
    _assert_signed(before, first["secret"])
    _assert_signed(after, second["secret"])
    assert not _signed_by(after, first["secret"])
    shown = await (await client.get("/admin/webhooks/secret", headers=owner.headers)).get_json()
    assert shown["configured"] is True and shown["version"] == 2
    assert "secret" not in shown and second["secret"] not in json.dumps(shown)


async def test_one_tenants_secret_never_signs_anothers_delivery(client, owner, seed):
    other = await seed.tenant_admin()
    apps = {}
    secrets = {}
    for who in (owner, other):
        apps[who.tenant_id], _ = await create_app_via_api(client, who.headers)
        secrets[who.tenant_id] = (await _new_secret(client, who.headers))["secret"]
    async with webhook_receiver() as receiver:
        runs = {}
        for who in (owner, other):
            app = apps[who.tenant_id]
            runs[who.tenant_id] = await create_run(
                client, app["id"], who.headers, input="x", engine="scripted",
                webhook=receiver.url(),
            )  # fmt: skip
        got = await receiver.wait_for(2)
    by_run = {r.json()["run_id"]: r for r in got}
    for who, stranger in ((owner, other), (other, owner)):
        request = by_run[runs[who.tenant_id]["run_id"]]
        _assert_signed(request, secrets[who.tenant_id])
        assert not _signed_by(request, secrets[stranger.tenant_id])
    # Nor does the other tenant see this run's deliveries.
    app, run = apps[owner.tenant_id], runs[owner.tenant_id]
    response = await client.get(runs_url(app["id"], f"/{run['run_id']}/webhook-deliveries"),
                                headers=other.headers)  # fmt: skip
    assert response.status_code == 404


async def test_a_webhook_needs_the_tenants_secret(client, owner):
    app, _ = await create_app_via_api(client, owner.headers)
    response = await client.post(
        runs_url(app["id"]),
        json={"input": "hi", "engine": "scripted", "webhook": "http://127.0.0.1:9/hook"},
        headers=owner.headers,
    )
    assert response.status_code == 422
    assert (await response.get_json())["detail"] == [{
        "type": "value_error", "loc": ["body", "webhook"], "input": None,
        "msg": "create the tenant's webhook secret first (POST /admin/webhooks/secret)",
    }]  # fmt: skip


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/hook", "/relative/hook", "http:///nohost", "x" * 2049, "",
        "http://8.8.8.8:99999/hook", "http://8.8.8.8:0/hook", "https://example.com:port/",
    ],
)  # fmt: skip
async def test_a_malformed_webhook_is_422(client, owner, url):
    app, _ = await create_app_via_api(client, owner.headers)
    await _new_secret(client, owner.headers)
    response = await client.post(
        runs_url(app["id"]),
        json={"input": "hi", "engine": "scripted", "webhook": url},
        headers=owner.headers,
    )
    assert response.status_code == 422
    [item] = (await response.get_json())["detail"]
    assert item["loc"] == ["body", "webhook"]


async def test_a_terminal_run_written_before_a_crash_is_delivered_after_restart(make_settings):
    """The outbox row commits with the status: a process that wrote the status and never
    delivered (here: delivery off, then gone) leaves it for the next process."""
    async with webhook_receiver() as receiver:
        quiet = make_settings(**FAST, webhook_delivery_enabled=False)
        async with running_app(quiet) as (client, services):
            owner, app, secret = await _tenant(client, services)
            run = await create_run(client, app["id"], owner.headers, input="hi",
                                   engine="scripted", webhook=receiver.url())  # fmt: skip
            final = await wait_status(client, app["id"], run["run_id"], owner.headers,
                                      {"completed"})  # fmt: skip
            [pending] = await _deliveries(client, app["id"], run["run_id"], owner.headers)
            assert pending["state"] == "pending" and pending["attempts"] == 0
        assert receiver.accepted == 0
        async with running_app(make_settings(**FAST)) as (client, _):
            [delivered] = await _wait_deliveries(
                client, app["id"], run["run_id"], owner.headers, ["delivered"]
            )
            [request] = await receiver.wait_for(1)
    assert delivered["delivery_id"] == pending["delivery_id"]
    assert request.headers["runwright-delivery"] == pending["delivery_id"]
    assert request.json() == final
    _assert_signed(request, secret)


async def test_an_attempt_cut_off_by_a_stop_is_made_again_by_the_next_process(make_settings):
    """A process that stops (or dies) mid-attempt leaves the row leased; once the lease
    lapses the next process sends the same delivery again (at least once)."""
    fast = make_settings(**FAST, webhook_timeout_seconds=30.0)
    async with webhook_receiver(["hang"]) as receiver:
        async with running_app(fast) as (client, services):
            owner, app, secret = await _tenant(client, services)
            run = await create_run(client, app["id"], owner.headers, input="hi",
                                   engine="scripted", webhook=receiver.url())  # fmt: skip
            [cut] = await receiver.wait_for(1)
        # The lease of the cut attempt lapses: make it due now instead of waiting it out.
        async with running_app(make_settings(**FAST)) as (client, services):
            await services.db.execute_raw(
                "UPDATE webhook_deliveries SET next_attempt_at = now() "
                f"WHERE run_id = '{uuid.UUID(run['run_id'])}'"
            )
            [delivered] = await _wait_deliveries(
                client, app["id"], run["run_id"], owner.headers, ["delivered"]
            )
            again = (await receiver.wait_for(2))[1]
    assert delivered["attempts"] == 2
    assert cut.headers["runwright-delivery"] == again.headers["runwright-delivery"]
    assert cut.body == again.body
    _assert_signed(again, secret)


async def test_a_crashed_worker_is_restarted_and_readiness_is_red_meanwhile(
    client, owner, monkeypatch
):
    """A bug in the worker's loop (here: its claim raises once) does not end delivery:
    the task is restarted, ``/readyz`` says so until it works again, nothing is lost."""
    calls = 0
    crashed, resume = asyncio.Event(), asyncio.Event()
    real_claim = WebhookStore.claim

    async def claim(self, limit, lease_seconds, **caps):
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("a bug in the claim path")
        if calls == 2:
            crashed.set()
            await resume.wait()  # the restarted worker's first claim waits here
        return await real_claim(self, limit, lease_seconds, **caps)

    app, _ = await create_app_via_api(client, owner.headers)
    await _new_secret(client, owner.headers)
    async with webhook_receiver() as receiver:
        monkeypatch.setattr(WebhookStore, "claim", claim)
        await asyncio.wait_for(crashed.wait(), 60)
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        detail = (await ready.get_json())["detail"]
        assert detail["checks"]["webhook_delivery"] == "restarting after a crash"
        run = await create_run(client, app["id"], owner.headers, input="hi", engine="scripted",
                               webhook=receiver.url())  # fmt: skip
        await wait_status(client, app["id"], run["run_id"], owner.headers, {"completed"})
        resume.set()
        await _wait_deliveries(client, app["id"], run["run_id"], owner.headers, ["delivered"])
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert (await ready.get_json())["checks"]["webhook_delivery"] == "ok"


async def test_an_approval_that_times_out_notifies_the_pause_and_the_failure(
    client,
    owner,
    make_model,
    scripted_openai,  # noqa: F811
):
    """Every writer of an end queues its delivery, not only the actor's finish: the approval
    timeout's sweep fails the run with its own statement."""
    async with webhook_receiver() as receiver:
        await make_model(owner.tenant_id, default=True, base_url=scripted_openai.base_url)
        app, _ = await create_app_via_api(client, owner.headers)
        await _new_secret(client, owner.headers)
        scripted_openai.push(
            tool_call_reply(ScriptedToolCall("coding_agent_delete_file", {"path": "x.ts"}))
        )
        run = await create_run(client, app["id"], owner.headers, input="Delete x",
                               approval_policy="patches", approval_timeout_seconds=1,
                               webhook=receiver.url())  # fmt: skip
        await wait_status(client, app["id"], run["run_id"], owner.headers, {"failed"})
        got = await receiver.wait_for(2)
        found = await _wait_deliveries(
            client, app["id"], run["run_id"], owner.headers, ["delivered", "delivered"]
        )
    assert [r.headers["runwright-event"] for r in got] == ["run.paused", "run.failed"]
    assert [d["event"] for d in found] == ["run.paused", "run.failed"]
    assert "No approval decision" in got[1].json()["error"]


async def test_redirects_are_not_followed(make_settings):
    settings = make_settings(**FAST, webhook_max_attempts=1)
    async with running_app(settings) as (client, services), webhook_receiver(["302"]) as receiver:
        owner, app, _ = await _tenant(client, services)
        run = await create_run(client, app["id"], owner.headers, input="hi", engine="scripted",
                               webhook=receiver.url())  # fmt: skip
        [delivery] = await _wait_deliveries(
            client, app["id"], run["run_id"], owner.headers, ["failed"]
        )
    assert delivery["last_status_code"] == 302
    assert [r.path for r in receiver.requests] == ["/hook"]  # never /redirected


async def test_nodes_delivering_side_by_side_send_each_delivery_once(make_settings):
    """Two processes on one database, both delivering: claims skip each other's rows."""
    async with webhook_receiver() as receiver:
        first = make_settings(**FAST, node_id="node-a")
        second = make_settings(**FAST, node_id="node-b")
        async with running_app(first) as (client, services), running_app(second):
            owner, app, _ = await _tenant(client, services)
            runs = [
                await create_run(
                    client,
                    app["id"],
                    owner.headers,
                    input=f"run {i}",
                    engine="scripted",
                    webhook=receiver.url(),
                )  # fmt: skip
                for i in range(12)
            ]
            for run in runs:
                await _wait_deliveries(
                    client, app["id"], run["run_id"], owner.headers, ["delivered"]
                )
    ids = [r.headers["runwright-delivery"] for r in receiver.requests]
    assert len(ids) == len(set(ids)) == 12
    assert {r.json()["run_id"] for r in receiver.requests} == {r["run_id"] for r in runs}
