"""Stream tickets (web/stream_tickets.py): a browser opens a run's stream with
``?ticket=`` instead of a bearer token; the ticket opens only that run's stream, only until
it expires, and is no bearer token anywhere else."""

from __future__ import annotations

import time
import uuid

from tests.support.api import create_app_via_api
from tests.support.runs import create_run, parse_sse, runs_url, types
from web import stream_tickets

SCRIPT = [{"delta": "hi"}, {"tool": "read_file", "input": {}, "output": {"ok": True}}]


async def _ticket(client, app_id, run_id, headers):
    response = await client.post(runs_url(app_id, f"/{run_id}/stream-ticket"), headers=headers)
    assert response.status_code == 200, await response.get_data(as_text=True)
    return await response.get_json()


async def _finished_run(client, owner):
    app, _ = await create_app_via_api(client, owner.headers)
    run = await create_run(client, app["id"], owner.headers, input="x", engine="scripted",
                           script=SCRIPT)  # fmt: skip
    # Wait for the end through the bearer stream (it ends after the terminal event).
    body = await client.get(runs_url(app["id"], f"/{run['run_id']}/stream"), headers=owner.headers)
    assert types(parse_sse(await body.get_data(as_text=True)))[-1] == "run.completed"
    return app, run


async def test_a_ticket_opens_the_runs_stream_without_a_bearer_token(client, owner):
    app, run = await _finished_run(client, owner)
    issued = await _ticket(client, app["id"], run["run_id"], owner.headers)
    assert set(issued) == {"ticket", "expires_at", "stream_url"}
    assert issued["stream_url"].startswith(runs_url(app["id"], f"/{run['run_id']}/stream?ticket="))
    response = await client.get(issued["stream_url"])  # no Authorization header
    assert response.status_code == 200
    events = parse_sse(await response.get_data(as_text=True))
    assert types(events)[-1] == "run.completed"
    resumed = await client.get(issued["stream_url"], headers={"Last-Event-ID": "2"})
    assert [e["id"] for e in parse_sse(await resumed.get_data(as_text=True))][0] == 3


async def test_a_ticket_opens_nothing_else(client, owner, seed):
    app, run = await _finished_run(client, owner)
    _, other = await _finished_run(client, owner)
    ticket = (await _ticket(client, app["id"], run["run_id"], owner.headers))["ticket"]
    base = runs_url(app["id"])
    # Another run of the same app.
    response = await client.get(f"{base}/{other['run_id']}/stream?ticket={ticket}")
    assert response.status_code == 401
    assert (await response.get_json())["detail"] == "Invalid or expired stream ticket"
    # As a bearer token, on the stream and on any other route.
    for method, url in (("GET", f"{base}/{run['run_id']}/stream"), ("GET", base),
                        ("POST", f"{base}/{run['run_id']}/cancel")):  # fmt: skip
        response = await client.open(url, method=method,
                                     headers={"Authorization": f"Bearer {ticket}"})  # fmt: skip
        assert response.status_code == 401, url
    # A bearer token is no ticket.
    bearer = owner.headers["Authorization"].removeprefix("Bearer ")
    response = await client.get(f"{base}/{run['run_id']}/stream?ticket={bearer}")
    assert response.status_code == 401
    # Another tenant's member cannot get a ticket for this run.
    stranger = await seed.tenant_admin()
    response = await client.post(f"{base}/{run['run_id']}/stream-ticket", headers=stranger.headers)
    assert response.status_code == 404


async def test_expired_forged_and_oversized_tickets_are_refused(client, owner, services):
    app, run = await _finished_run(client, owner)
    url = runs_url(app["id"], f"/{run['run_id']}/stream")
    grant = {"subject": owner.user_id, "tenant_id": owner.tenant_id,
             "app_id": uuid.UUID(app["id"]), "run_id": uuid.UUID(run["run_id"])}  # fmt: skip
    expired, _ = stream_tickets.issue(services.jwt_secret, **grant, ttl_seconds=60,
                                      now=time.time() - 120)  # fmt: skip
    forged, _ = stream_tickets.issue("another-secret-0123456789abcdef-0123456789", **grant,
                                     ttl_seconds=60)  # fmt: skip
    for ticket in (expired, forged, "garbage"):
        response = await client.get(f"{url}?ticket={ticket}")
        assert response.status_code == 401
        assert (await response.get_json())["detail"] == "Invalid or expired stream ticket"
        # Every 401 carries the challenge (RFC 9110 11.6.1; the OpenAPI document says so).
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    response = await client.get(f"{url}?ticket={'a' * 5000}")
    assert response.status_code == 422
    # A well-signed ticket naming another tenant: the run is looked up in that tenant.
    fresh, _ = stream_tickets.issue(services.jwt_secret, **{**grant, "tenant_id": uuid.uuid4()},
                                    ttl_seconds=60)  # fmt: skip
    assert (await client.get(f"{url}?ticket={fresh}")).status_code == 404


async def test_the_ticket_route_needs_the_bearer_chain(client, owner):
    app, run = await _finished_run(client, owner)
    url = runs_url(app["id"], f"/{run['run_id']}/stream-ticket")
    assert (await client.post(url)).status_code == 401
    missing = runs_url(app["id"], f"/{uuid.uuid4()}/stream-ticket")
    assert (await client.post(missing, headers=owner.headers)).status_code == 404
