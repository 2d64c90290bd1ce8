"""Webhook egress an attacker would try (issue 12 item 5, docs/security.md "Webhooks").

With the default egress policy (no loopback or private networks for tenants): a run's
``webhook`` that names an internal destination is refused at create, whatever its spelling;
and a stored webhook whose name resolves inside by the time it is delivered (DNS
rebinding-style: here ``localhost``, accepted by a process whose operator allowed
loopback) gets no connection when it is delivered: the check is made again at connect time.
"""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from tests.support.api import create_app_via_api, running_app
from tests.support.runs import create_run, runs_url, wait_status
from tests.support.seed import Seeder
from tests.support.webhook_receiver import webhook_receiver

REFUSED = "webhook is not allowed by the server's egress policy"
FAST = {
    "scripted_engine_enabled": True,
    "webhook_retry_base_seconds": 0.05,
    "webhook_retry_max_seconds": 0.2,
    "webhook_poll_seconds": 0.05,
}


@pytest.fixture
def settings(make_settings):
    return make_settings(**FAST, egress_allowed_networks=())  # the default policy


INTERNAL = [
    "http://127.0.0.1:{port}/hook",
    "http://localhost:{port}/hook",  # a name that resolves to loopback
    "http://2130706433:{port}/hook",  # 127.0.0.1 as one number
    "http://[::1]:{port}/hook",
    "http://[::ffff:127.0.0.1]:{port}/hook",
    "http://0.0.0.0:{port}/hook",
    "http://10.0.0.7/hook",
    "http://192.168.1.1/hook",
    "http://169.254.169.254/latest/meta-data",
    "http://[fe80::1]/hook",
    # IPv6 outside global unicast that Python 3.11's is_global calls global:
    "http://[::127.0.0.1]:{port}/hook",  # IPv4-compatible loopback
    "http://[::ffff:0:7f00:1]:{port}/hook",  # SIIT-translated loopback
    "http://[64:ff9b:1::a00:7]/hook",  # local-use NAT64 of 10.0.0.7 (RFC 8215)
    "http://[fec0::1]/hook",  # site-local
    "https://user:secret@hooks.example.com/hook",
]


async def test_internal_webhooks_are_refused_at_create(client, owner, caplog):
    caplog.set_level(logging.INFO, logger="web.webhook_targets")
    app, _ = await create_app_via_api(client, owner.headers)
    secret = await client.post("/admin/webhooks/secret", headers=owner.headers)
    assert secret.status_code == 200
    async with webhook_receiver() as receiver:
        for template in INTERNAL:
            url = template.format(port=receiver.port)
            response = await client.post(
                runs_url(app["id"]),
                json={"input": "hi", "engine": "scripted", "webhook": url},
                headers=owner.headers,
            )
            assert response.status_code == 422, url
            assert (await response.get_json())["detail"] == [{
                "type": "value_error", "loc": ["body", "webhook"], "msg": REFUSED,
                "input": None,
            }], url  # fmt: skip
        runs = await client.get(runs_url(app["id"]), headers=owner.headers)
        assert await runs.get_json() == []  # nothing was created
    assert receiver.accepted == 0
    assert "is a loopback address" in caplog.text  # the cause is in the operator's log


async def test_a_name_that_resolves_inside_at_delivery_gets_no_connection(make_settings):
    async with webhook_receiver() as receiver:
        # Registered while the name was acceptable (a looser policy, an earlier DNS answer).
        loose = make_settings(**FAST, egress_allowed_networks=("127.0.0.0/8",),
                              webhook_delivery_enabled=False)  # fmt: skip
        async with running_app(loose) as (client, services):
            owner = await Seeder(services.db, services.jwt_secret).tenant_admin()
            app, _ = await create_app_via_api(client, owner.headers)
            await client.post("/admin/webhooks/secret", headers=owner.headers)
            hook = receiver.url("localhost")
            run = await create_run(client, app["id"], owner.headers, input="hi",
                                   engine="scripted", webhook=hook)  # fmt: skip
            await wait_status(client, app["id"], run["run_id"], owner.headers, {"completed"})
        strict = make_settings(**FAST, egress_allowed_networks=(), webhook_max_attempts=2)
        async with running_app(strict) as (client, _):
            url = runs_url(app["id"], f"/{run['run_id']}/webhook-deliveries")
            deadline = time.monotonic() + 60
            while True:
                [delivery] = await (await client.get(url, headers=owner.headers)).get_json()
                if delivery["state"] != "pending" or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.05)
    assert delivery["state"] == "failed" and delivery["attempts"] == 2
    assert delivery["last_error"] == "refused: not allowed by the server's egress policy"
    assert delivery["last_status_code"] is None
    assert receiver.accepted == 0
