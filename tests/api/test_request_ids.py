"""Every response carries an ``X-Request-ID``: the caller's when it is sane, else a new one
(errors included)."""

from __future__ import annotations

import re

import pytest

from tests.support.runs import runs_url

GENERATED = re.compile(r"[0-9a-f]{32}")


async def test_a_sane_inbound_request_id_is_echoed(client, owner):
    ok = await client.get("/admin/apps", headers={**owner.headers, "X-Request-ID": "lb-7f3a:1"})
    assert ok.status_code == 200
    assert ok.headers["X-Request-ID"] == "lb-7f3a:1"
    longest = "r" * 128
    health = await client.get("/healthz", headers={"X-Request-ID": longest})
    assert health.headers["X-Request-ID"] == longest


@pytest.mark.parametrize(
    "inbound",
    ["r" * 129, "has space", "semi;colon", "-leading-dash", "<script>", "é-accent", ""],
)
async def test_an_unsafe_inbound_request_id_is_replaced(client, inbound):
    response = await client.get("/healthz", headers={"X-Request-ID": inbound})
    assert response.status_code == 200
    assert GENERATED.fullmatch(response.headers["X-Request-ID"])


async def test_error_responses_carry_a_request_id_too(client, owner):
    unauthenticated = await client.get("/admin/apps", headers={"X-Request-ID": "mine-401"})
    assert unauthenticated.status_code == 401
    assert unauthenticated.headers["X-Request-ID"] == "mine-401"
    missing = await client.get("/no/such/route")
    assert missing.status_code == 404
    assert GENERATED.fullmatch(missing.headers["X-Request-ID"])
    bad_body = await client.post(
        runs_url("00000000-0000-0000-0000-000000000001"), json={"input": 5},
        headers={**owner.headers, "X-Request-ID": "mine-4xx"},
    )  # fmt: skip
    assert 400 <= bad_body.status_code < 500
    assert bad_body.headers["X-Request-ID"] == "mine-4xx"


async def test_each_request_gets_its_own_generated_id(client):
    first = await client.get("/healthz")
    second = await client.get("/healthz")
    assert first.headers["X-Request-ID"] != second.headers["X-Request-ID"]
