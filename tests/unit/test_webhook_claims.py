"""The webhook claim's order and per-tenant cap on real Postgres (storage.webhooks.claim,
docs/architecture.md "Webhook outbox": tenants take turns, at most the cap in flight).

The app's own delivery worker is off here, so only these claims touch the rows (each test
has a database of its own).
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from storage.webhooks import WebhookStore

LEASE = 60.0


@pytest.fixture
def settings(make_settings):
    return make_settings(webhook_delivery_enabled=False)


async def _deliveries(db, tenant: uuid.UUID, ages: list[int]) -> list[uuid.UUID]:
    """Pending deliveries of a finished run of ``tenant``, due ``86400 - age`` seconds
    ago each (a larger age: due earlier); their ids in that order."""
    run_id = uuid.uuid4()
    await db.execute_raw(
        f"INSERT INTO agent_runs (id, tenant_id, status) VALUES ('{run_id}', '{tenant}', "
        "'completed')"
    )
    ids = []
    for age in ages:
        delivery_id = uuid.uuid4()
        await db.execute_raw(
            "INSERT INTO webhook_deliveries (id, tenant_id, run_id, url, event, run, "
            f"next_attempt_at) VALUES ('{delivery_id}', '{tenant}', '{run_id}', "
            "'http://127.0.0.1:9/hook', 'run.completed', '{}', "
            f"now() - interval '1 day' - interval '{age} seconds')"
        )
        ids.append(delivery_id)
    return ids


async def _claim(store: WebhookStore, mine: set[uuid.UUID], limit: int, cap: int):
    return [d.id for d in await store.claim(limit, LEASE, tenant_cap=cap) if d.id in mine]


async def test_tenants_take_turns_and_none_exceeds_its_cap(db, seed):
    a, b, c = [await seed.tenant() for _ in range(3)]
    # By due time alone tenant A's five would all go first.
    a_ids = await _deliveries(db, a, [100, 99, 98, 97, 96])
    b_ids = await _deliveries(db, b, [50])
    c_ids = await _deliveries(db, c, [40, 39])
    mine = set(a_ids + b_ids + c_ids)
    store = WebhookStore(db)

    # Turn 1: each tenant's oldest, by due time.
    assert await _claim(store, mine, 3, cap=2) == [a_ids[0], b_ids[0], c_ids[0]]
    # Turn 2: A's and C's second (A has one in flight, so A's third would be turn 3 > cap).
    assert await _claim(store, mine, 100, cap=2) == [a_ids[1], c_ids[1]]
    # A is at its cap, across whatever claimed: nothing more of A, however many slots.
    assert await _claim(store, mine, 100, cap=2) == []

    # An outcome ends the attempt's lease: A has a slot again, for its oldest due row.
    await store.retry(a_ids[0], 1, delay_seconds=0.0, status_code=None, error="timed out")
    assert await _claim(store, mine, 100, cap=2) == [a_ids[2]]

    # A lease that lapsed (its node died mid-attempt) stops counting by itself, and the
    # row is due again: it and A's oldest due row are claimed, A's cap still holding.
    await db.execute_raw(
        "UPDATE webhook_deliveries SET next_attempt_at = now() - interval '2 days', "
        f"lease_expires_at = now() - interval '1 second' WHERE id = '{a_ids[1]}'"
    )
    assert await _claim(store, mine, 100, cap=2) == [a_ids[1]]
    assert await _claim(store, mine, 100, cap=3) == [a_ids[3]]


async def test_claims_at_once_count_each_others_attempts(db, seed):
    """Two claims on two connections at once: the claim lock makes the second count the
    first's attempts, so together they take the cap and no more."""
    tenant = await seed.tenant()
    ids = await _deliveries(db, tenant, list(range(10, 0, -1)))
    store = WebhookStore(db)
    first, second = await asyncio.gather(
        _claim(store, set(ids), 100, cap=3), _claim(store, set(ids), 100, cap=3)
    )
    assert sorted(first + second) == sorted(ids[:3])
    assert len(first + second) == len(set(first + second))
