"""Model egress an attacker would try (issue 9 items 3 and 6, docs/security.md).

Through the public HTTP API against a real Postgres and real loopback servers, with the
default egress policy (no network allowed beyond public addresses): a tenant model's
``base_url`` cannot reach loopback, private, link-local, CGNAT, multicast, unspecified or
metadata addresses, whether written as a literal, an alternative spelling or a name that
resolves there; and the check is made again when connecting, so a stored endpoint that
points inside gets no connection. (What run errors reveal: test_model_upstream_errors.py.)
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest

from storage import models as models_store
from storage.models import BindingSpec
from tests.support.api import create_app_via_api
from tests.support.listener import canned_server, http_response
from tests.support.runs import create_run, wait_status

REFUSED = "base_url is not allowed by the server's egress policy"
UNREACHABLE = (
    "could not be reached (connection failed, or not allowed by the server's egress policy)"
)


@pytest.fixture
def settings(make_settings):
    return make_settings(egress_allowed_networks=())  # the default policy


@pytest.fixture
async def listener():
    """The server an attacker controls, on loopback: answers anything with 200."""
    async with canned_server(http_response(200, b'{"object": "list", "data": []}')) as server:
        yield server


def _binding(base_url: str) -> dict[str, Any]:
    return {"provider": "openai", "provider_model_id": "m", "base_url": base_url}


async def _post_model(client, headers, base_url: str, **body: Any):
    payload = {"name": f"m-{uuid.uuid4().hex[:6]}", "bindings": [_binding(base_url)], **body}
    return await client.post("/admin/models", json=payload, headers=headers)


async def _failed_run(client, owner, model_id: uuid.UUID) -> dict[str, Any]:
    app, _ = await create_app_via_api(client, owner.headers)
    run = await create_run(client, app["id"], owner.headers, input="hi", model_id=str(model_id))
    done = await wait_status(client, app["id"], run["run_id"], owner.headers,
                             {"completed", "failed"}, within=60)  # fmt: skip
    assert done["status"] == "failed"
    return done


INTERNAL = [
    "http://127.0.0.1:{port}/v1",
    "http://localhost:{port}/v1",  # a name that resolves to loopback
    "http://127.1:{port}/v1",  # short form
    "http://2130706433:{port}/v1",  # 127.0.0.1 as one decimal number
    "http://0x7f000001:{port}/v1",  # ... in hexadecimal
    "http://[::1]:{port}/v1",
    "http://[::ffff:127.0.0.1]:{port}/v1",  # IPv4-mapped IPv6
    "http://[64:ff9b::7f00:1]:{port}/v1",  # NAT64 of 127.0.0.1
    "http://0.0.0.0:{port}/v1",
    "http://10.0.0.7/v1",
    "http://172.16.5.4/v1",
    "http://192.168.1.1/v1",
    "http://100.64.0.1/v1",  # CGNAT
    "http://169.254.169.254/latest/meta-data",  # cloud metadata
    "http://[fd00:ec2::254]/latest/meta-data",
    "http://192.0.0.192/opc/v1",
    "http://[fe80::1]/v1",
    "http://224.0.0.1/v1",
    "https://user:secret@api.example.com/v1",  # credentials in the URL
    "file:///etc/passwd",
]


async def test_registration_refuses_every_internal_destination(client, owner, listener, caplog):
    caplog.set_level(logging.INFO, logger="web.model_bindings")
    for template in INTERNAL:
        base_url = template.format(port=listener.port)
        response = await _post_model(client, owner.headers, base_url)
        assert response.status_code == 422, base_url
        detail = (await response.get_json())["detail"]
        assert detail == [{"type": "value_error", "loc": ["body", "bindings", 0, "base_url"],
                           "msg": REFUSED, "input": None}], base_url  # fmt: skip
    documentation = await _post_model(client, owner.headers, "https://203.0.113.9/v1")
    assert documentation.status_code == 422  # TEST-NET-3: not a global address either
    assert listener.accepted == 0
    assert "is a loopback address" in caplog.text  # the operator's log has the cause


async def test_patch_cannot_move_a_model_inside(client, db, owner, listener):
    model, _ = await models_store.create_model(
        db, tenant_id=owner.tenant_id, name="public",
        bindings=[BindingSpec("openai", "m", "https://93.184.215.14/v1")],
    )  # fmt: skip
    body = {"bindings": [_binding(listener.url())]}
    response = await client.patch(f"/admin/models/{model.id}", json=body, headers=owner.headers)
    assert response.status_code == 422
    assert (await response.get_json())["detail"][0]["msg"] == REFUSED


async def test_global_models_are_the_operators_and_trusted(client, seed, owner, listener):
    admin_id = await seed.user(platform_admin=True)
    admin = seed.headers_for(admin_id, owner.tenant_id, platform_admin=True, org_role=None)
    response = await _post_model(client, admin, listener.url(), scope="global")
    assert response.status_code == 200


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_a_stored_internal_endpoint_gets_no_connection_at_run_time(
    client, db, owner, listener, host
):
    """The check is repeated when connecting (a row from a looser policy, or a name whose
    DNS answer changed after registration): the run fails and nothing reaches the server."""
    model, _ = await models_store.create_model(
        db, tenant_id=owner.tenant_id, name="inside",
        bindings=[BindingSpec("openai", "m", listener.url(host))],
    )  # fmt: skip
    run = await _failed_run(client, owner, model.id)
    assert run["error"] == f"model endpoint {listener.url(host)} {UNREACHABLE}"
    assert listener.accepted == 0
