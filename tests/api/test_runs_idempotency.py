"""``Idempotency-Key`` on run creation (issue 10, part 2 item 5; IETF httpapi draft): a
repeated create returns the first response and makes no second run, a reused key with
another body is 422, concurrent duplicates make exactly one run, keys are per caller and
expire."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest

from tests.support.runs import read_stream, runs_url

SCRIPTED = {"input": "hello", "engine": "scripted", "script": [{"delta": "hi"}]}


async def _post(client: Any, app_id: str, headers: dict[str, str], key: str | None,
                body: Any = None, *, raw: str | None = None) -> Any:  # fmt: skip
    hdrs = dict(headers)
    if key is not None:
        hdrs["Idempotency-Key"] = key
    if raw is not None:
        hdrs["Content-Type"] = "application/json"
        return await client.post(runs_url(app_id), data=raw, headers=hdrs)
    return await client.post(runs_url(app_id), json=body, headers=hdrs)


async def _run_ids(client: Any, app_id: str, headers: dict[str, str]) -> list[str]:
    response = await client.get(runs_url(app_id), headers=headers)
    assert response.status_code == 200
    return [run["run_id"] for run in await response.get_json()]


async def test_a_repeated_create_returns_the_first_response_and_no_second_run(
    client: Any, owner: Any, app_and_draft: Any
) -> None:
    app, _ = app_and_draft
    first = await _post(client, app["id"], owner.headers, "key-1", SCRIPTED)
    assert first.status_code == 200
    first_body = await first.get_data(as_text=True)
    run_id = json.loads(first_body)["run_id"]
    # The run finishes meanwhile: the repeat still gets the response as first sent.
    await read_stream(client, app["id"], run_id, owner.headers)

    again = await _post(client, app["id"], owner.headers, "key-1", SCRIPTED)
    assert again.status_code == 200
    assert await again.get_data(as_text=True) == first_body
    assert json.loads(first_body)["status"] == "queued"
    # Same JSON, other spacing and member order, the key as a Structured Field string.
    reordered = json.dumps({"script": SCRIPTED["script"], "engine": "scripted", "input": "hello"},
                           indent=2)  # fmt: skip
    third = await _post(client, app["id"], owner.headers, '"key-1"', raw=reordered)
    assert third.status_code == 200
    assert await third.get_data(as_text=True) == first_body
    assert await _run_ids(client, app["id"], owner.headers) == [run_id]


async def test_the_same_key_with_another_body_is_422_and_creates_nothing(
    client: Any, owner: Any, app_and_draft: Any
) -> None:
    app, _ = app_and_draft
    first = await _post(client, app["id"], owner.headers, "key-2", SCRIPTED)
    assert first.status_code == 200
    other = await _post(client, app["id"], owner.headers, "key-2", {**SCRIPTED, "input": "bye"})
    assert other.status_code == 422
    detail = (await other.get_json())["detail"]
    assert detail["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert len(await _run_ids(client, app["id"], owner.headers)) == 1


async def test_concurrent_duplicates_create_exactly_one_run(
    client: Any, owner: Any, app_and_draft: Any
) -> None:
    app, _ = app_and_draft
    responses = await asyncio.gather(
        *(_post(client, app["id"], owner.headers, "burst", SCRIPTED) for _ in range(6))
    )
    assert [r.status_code for r in responses] == [200] * 6
    bodies = {await r.get_data(as_text=True) for r in responses}
    assert len(bodies) == 1, bodies
    (run_id,) = {json.loads(b)["run_id"] for b in bodies}
    assert await _run_ids(client, app["id"], owner.headers) == [run_id]


async def test_keys_belong_to_their_caller_and_app(
    client: Any, owner: Any, seed: Any, app_and_draft: Any
) -> None:
    app, _ = app_and_draft
    colleague = await seed.member(owner.tenant_id, role="admin")
    mine = await _post(client, app["id"], owner.headers, "shared", SCRIPTED)
    theirs = await _post(client, app["id"], colleague.headers, "shared", SCRIPTED)
    assert mine.status_code == theirs.status_code == 200
    assert (await mine.get_json())["run_id"] != (await theirs.get_json())["run_id"]
    assert len(await _run_ids(client, app["id"], owner.headers)) == 2


async def test_a_repeat_gets_its_first_response_where_a_new_create_would_be_refused(
    client: Any, owner: Any, app_and_draft: Any
) -> None:
    # The key's entry is read before every check of the create (it comes with the creation
    # read): a draft that moved on since the first create does not turn the repeat into a 409.
    app, draft = app_and_draft
    body = {**SCRIPTED, "base_revision_id": draft["id"]}
    first = await _post(client, app["id"], owner.headers, "pinned", body)
    assert first.status_code == 200
    files = dict(draft["files"], **{"README.md": "edited by a person\n"})
    moved = await client.post(
        f"/admin/apps/{app['id']}/builder/revisions",
        json={"files": files, "base_revision_id": draft["id"]}, headers=owner.headers,
    )  # fmt: skip
    assert moved.status_code == 200
    fresh = await _post(client, app["id"], owner.headers, "fresh", body)
    assert fresh.status_code == 409  # the check the repeat must not reach
    again = await _post(client, app["id"], owner.headers, "pinned", body)
    assert again.status_code == 200
    assert await again.get_data(as_text=True) == await first.get_data(as_text=True)


async def test_the_response_stored_with_the_key_is_the_inserted_runs_object(
    client: Any, owner: Any, app_and_draft: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # The statement that inserts the run stores the response made from the row it will
    # insert (storage.runs._queued_row); a row it did not foresee is corrected and logged.
    caplog.set_level(logging.ERROR, logger="storage.runs")
    app, _ = app_and_draft
    body = {**SCRIPTED, "approval_policy": "all", "approval_timeout_seconds": 60}
    first = await _post(client, app["id"], owner.headers, "foreseen", body)
    assert first.status_code == 200
    again = await _post(client, app["id"], owner.headers, "foreseen", body)
    assert await again.get_data(as_text=True) == await first.get_data(as_text=True)
    assert [r.getMessage() for r in caplog.records if r.name == "storage.runs"] == []


async def test_a_refused_create_does_not_bind_its_key(
    client: Any, owner: Any, app_and_draft: Any
) -> None:
    app, _ = app_and_draft
    refused = await _post(client, app["id"], owner.headers, "retry-me",
                          {**SCRIPTED, "input": "   "})  # fmt: skip
    assert (refused.status_code, (await refused.get_json())["detail"]) == (
        400,
        "input is required",
    )
    fixed = await _post(client, app["id"], owner.headers, "retry-me", SCRIPTED)
    assert fixed.status_code == 200


@pytest.mark.parametrize(
    "value",
    ["", '""', "x" * 256, "caf\u00e9", '"open', '"a"b"', '"bad\\x"'],
    ids=["empty", "empty-sf", "too-long", "non-ascii", "unterminated", "inner-quote", "escape"],
)
async def test_a_malformed_key_is_a_422_naming_the_header(
    client: Any, owner: Any, app_and_draft: Any, value: str
) -> None:
    app, _ = app_and_draft
    response = await client.post(
        runs_url(app["id"]), json=SCRIPTED,
        headers={**owner.headers, "Idempotency-Key": value.encode("utf-8").decode("latin-1")},
    )  # fmt: skip
    assert response.status_code == 422, await response.get_data(as_text=True)
    (item,) = (await response.get_json())["detail"]
    assert item["loc"] == ["header", "idempotency-key"]
    assert await _run_ids(client, app["id"], owner.headers) == []


async def test_openapi_documents_the_header(client: Any) -> None:
    spec = await (await client.get("/openapi.json")).get_json()
    post = spec["paths"]["/admin/apps/{app_id}/coding-agent/runs"]["post"]
    names = [p["name"] for p in post.get("parameters", []) if p.get("in") == "header"]
    assert "Idempotency-Key" in names
