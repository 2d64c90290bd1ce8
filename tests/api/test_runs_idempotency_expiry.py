"""``Idempotency-Key`` expiry (issue 10, part 2 item 5): after
``RUNWRIGHT_IDEMPOTENCY_KEY_TTL_SECONDS`` the same request makes a new run, and the
background sweeper deletes expired keys."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from storage import idempotency as idempotency_store
from tests.support.runs import runs_url

SCRIPTED = {"input": "hello", "engine": "scripted", "script": [{"delta": "hi"}]}


async def _post(client: Any, app_id: str, headers: dict[str, str], key: str, body: Any) -> Any:
    return await client.post(runs_url(app_id), json=body,
                             headers={**headers, "Idempotency-Key": key})  # fmt: skip


async def _run_ids(client: Any, app_id: str, headers: dict[str, str]) -> list[str]:
    response = await client.get(runs_url(app_id), headers=headers)
    assert response.status_code == 200
    return [run["run_id"] for run in await response.get_json()]


@pytest.fixture
def settings(make_settings: Any) -> Any:
    return make_settings(scripted_engine_enabled=True, idempotency_key_ttl_seconds=1.0)


async def test_an_expired_key_creates_a_new_run_and_is_swept(
    client: Any, owner: Any, app_and_draft: Any, db: Any
) -> None:
    """With a 1 s lifetime the key frees itself: the same request then makes a new run."""
    app, _ = app_and_draft
    first = await (await _post(client, app["id"], owner.headers, "short", SCRIPTED)).get_json()
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        response = await _post(client, app["id"], owner.headers, "short", SCRIPTED)
        assert response.status_code == 200
        if (await response.get_json())["run_id"] != first["run_id"]:
            break
        assert asyncio.get_running_loop().time() < deadline, "the key never expired"
        await asyncio.sleep(0.1)
    assert len(await _run_ids(client, app["id"], owner.headers)) == 2
    key = idempotency_store.IdempotencyKey(
        owner.tenant_id, uuid.UUID(app["id"]), f"user:{owner.user_id}", "short", "", 1.0
    )
    # The background sweeper deletes the (new) row too once it has expired.
    while await idempotency_store.lookup(db, key) is not None or await _raw_count(db):
        assert asyncio.get_running_loop().time() < deadline + 60, "expired keys stayed"
        await asyncio.sleep(0.1)


async def _raw_count(db: Any) -> int:
    return int(await db.fetchval("test_count_idempotency_keys"))
