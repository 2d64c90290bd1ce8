"""A retried resume is answered, never applied twice (``Idempotency-Key`` on resume,
runtime/runs/resume_keys.py), through the HTTP API against a real Postgres.

The 503 is a real one: a transaction of the test holds the run's row lock (a stalled
database as a client sees it), so the resume's requeue write waits past the command
timeout and the client gets 503 while the write lands once the lock goes.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import asyncpg
import pytest

from runtime.runs import service as run_service
from tests.support.runs import create_run, read_stream, runs_url, wait_status

SCRIPT = [
    {"pause": {"step": 1}},
    {"delta": "after the first pause"},
    {"pause": {"step": 2}},
    {"delta": "after the second pause"},
]


def _resumed_with(events: list[dict[str, Any]]) -> list[Any]:
    return [
        e["data"]["payload"]["resumed_with"]
        for e in events
        if e["data"]["event"] == "plan.updated" and "resumed_with" in e["data"]["payload"]
    ]


async def _resume(client, app_id, run_id, headers, key: str | None, **body: Any):
    hdrs = dict(headers) if key is None else {**headers, "Idempotency-Key": key}
    return await client.post(
        runs_url(app_id, f"/{run_id}/resume"), json={"payload": {}, **body}, headers=hdrs
    )


async def _until_answered(send, within: float = 20.0):
    """Send until the answer is not a 503 (the resume's own write may still be under way:
    the run says 'busy, try again')."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        response = await send()
        if response.status_code != 503 or asyncio.get_running_loop().time() > deadline:
            return response
        await asyncio.sleep(0.05)


async def test_a_resume_retried_after_a_503_is_answered_and_never_resumes_twice(
    client, owner, app_and_draft, database_url, monkeypatch
):
    app, _ = app_and_draft
    run = await create_run(client, app["id"], owner.headers, input="x", engine="scripted",
                           script=SCRIPT)  # fmt: skip
    run_id = run["run_id"]
    _, first = await read_stream(client, app["id"], run_id, owner.headers)
    assert first[-1]["data"]["payload"]["status"] == "paused"

    monkeypatch.setattr(run_service, "COMMAND_TIMEOUT_SECONDS", 1.0)
    lock = await asyncpg.connect(database_url)
    try:
        tx = lock.transaction()
        await tx.start()
        await lock.execute("SELECT 1 FROM agent_runs WHERE id = $1 FOR UPDATE", uuid.UUID(run_id))
        lost = await _resume(client, app["id"], run_id, owner.headers, '"r-1"',
                             payload={"go": 1})  # fmt: skip
        assert lost.status_code == 503, await lost.get_data(as_text=True)
        assert "detail" in await lost.get_json()
        await tx.rollback()  # the database is back: the stalled write lands
    finally:
        await lock.close()
    monkeypatch.setattr(run_service, "COMMAND_TIMEOUT_SECONDS", 60.0)

    # The client retries the request it got a 503 for: the run's answer, not 409.
    again = await _until_answered(
        lambda: _resume(client, app["id"], run_id, owner.headers, '"r-1"', payload={"go": 1})
    )
    assert again.status_code == 200, await again.get_data(as_text=True)
    assert (await again.get_json())["run_id"] == run_id

    # The run went on to its second pause; a late retry of the first resume is answered
    # with the run as it is (paused) and does not resume that second pause.
    _, rest = await read_stream(client, app["id"], run_id, owner.headers, after=first[-1]["id"])
    assert rest[-1]["data"]["payload"]["status"] == "paused"
    late = await _resume(client, app["id"], run_id, owner.headers, '"r-1"', payload={"go": 1})
    assert late.status_code == 200, await late.get_data(as_text=True)
    assert (await late.get_json())["status"] == "paused"
    # The same key with another body is refused; nothing is resumed.
    reused = await _resume(client, app["id"], run_id, owner.headers, '"r-1"', payload={"go": 2})
    assert reused.status_code == 422
    assert (await reused.get_json())["detail"] == {
        "code": "IDEMPOTENCY_KEY_REUSED",
        "message": "This Idempotency-Key was already used with a different request body.",
    }
    assert (await wait_status(client, app["id"], run_id, owner.headers, {"paused"}))["status"]

    # A new key resumes the second pause: the run then completes, each pause resumed once,
    # and the engine got the payload without the stored keys.
    second = await _resume(client, app["id"], run_id, owner.headers, "r-2", payload={"go": 3})
    assert second.status_code == 200, await second.get_data(as_text=True)
    _, done = await read_stream(client, app["id"], run_id, owner.headers)
    assert done[-1]["data"]["payload"]["status"] == "completed"
    assert _resumed_with(done) == [{"go": 1}, {"go": 3}]
    deltas = [e["data"]["payload"].get("content") for e in done]
    assert deltas.count("after the second pause") == 1
    # Once ended, both keys still answer with the run.
    for key, payload in (('"r-1"', {"go": 1}), ("r-2", {"go": 3})):
        late = await _resume(client, app["id"], run_id, owner.headers, key, payload=payload)
        assert late.status_code == 200 and (await late.get_json())["status"] == "completed"


async def test_without_a_key_a_repeated_resume_is_409(client, owner, app_and_draft):
    """The documented limit without a key: a retry of a resume that went through meets
    409 "Run is not paused". A malformed key is a 422 on the header; the reserved payload
    member is refused."""
    app, _ = app_and_draft
    run = await create_run(client, app["id"], owner.headers, input="x", engine="scripted",
                           script=[{"pause": {}}, {"sleep_ms": 3000}])  # fmt: skip
    run_id = run["run_id"]
    await wait_status(client, app["id"], run_id, owner.headers, {"paused"})
    bad = await _resume(client, app["id"], run_id, owner.headers, '"unterminated')
    assert bad.status_code == 422
    assert (await bad.get_json())["detail"][0]["loc"] == ["header", "idempotency-key"]
    reserved = await _resume(
        client, app["id"], run_id, owner.headers, None,
        payload={"runwright.resume_keys": []},
    )  # fmt: skip
    assert reserved.status_code == 422
    assert (await reserved.get_json())["detail"][0]["loc"][:2] == ["body", "payload"]

    first = await _resume(client, app["id"], run_id, owner.headers, None)
    assert first.status_code == 200
    repeat = await _resume(client, app["id"], run_id, owner.headers, None)
    assert repeat.status_code == 409
    assert await repeat.get_json() == {"detail": "Run is not paused"}
    # A key the run never applied is no repeat either.
    unknown = await _resume(client, app["id"], run_id, owner.headers, "never-used")
    assert unknown.status_code == 409
    cancelled = await client.post(runs_url(app["id"], f"/{run_id}/cancel"), headers=owner.headers)
    assert cancelled.status_code == 200


@pytest.mark.parametrize("header", ['"r-9"', "r-9"])
async def test_a_keyed_resume_repeats_with_either_spelling_of_the_key(
    client, owner, app_and_draft, header
):
    app, _ = app_and_draft
    run = await create_run(client, app["id"], owner.headers, input="x", engine="scripted",
                           script=[{"pause": {}}, {"pause": {}}])  # fmt: skip
    run_id = run["run_id"]
    await wait_status(client, app["id"], run_id, owner.headers, {"paused"})
    first = await _resume(client, app["id"], run_id, owner.headers, '"r-9"')
    assert first.status_code == 200
    await wait_status(client, app["id"], run_id, owner.headers, {"paused"})
    again = await _resume(client, app["id"], run_id, owner.headers, header)
    assert again.status_code == 200 and (await again.get_json())["status"] == "paused"


async def test_openapi_documents_the_header_on_resume(client) -> None:
    spec = await (await client.get("/openapi.json")).get_json()
    post = spec["paths"]["/admin/apps/{app_id}/coding-agent/runs/{run_id}/resume"]["post"]
    header = next(p for p in post["parameters"] if p.get("in") == "header")
    assert header["name"] == "Idempotency-Key"
    assert "IDEMPOTENCY_KEY_REUSED" in header["description"]
    assert "runwright.resume_keys" in json.dumps(
        post["requestBody"]
    ) or "runwright.resume_keys" in (json.dumps(spec["components"]))
