"""The live fan-out: bounded per-subscriber queues, batch drain, keep-alive ticks."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

from runtime.runs.broker import Broker
from runtime.runs.events import EventDraft, make_event

RUN = uuid.uuid4()
APP = uuid.uuid4()


def events(first: int, count: int):
    now = datetime.now(UTC)
    return [
        make_event(EventDraft("plan.updated", {"n": seq}), run_id=RUN, app_id=APP, seq=seq, ts=now)
        for seq in range(first, first + count)
    ]


async def test_a_subscriber_drains_everything_queued_in_one_batch():
    broker = Broker(queue_max=100, keepalive_seconds=60)
    sub = broker.subscribe(RUN)
    broker.publish(events(1, 3))
    broker.publish(events(4, 2))
    batch = await sub.next_batch()
    assert [e.seq for e in batch] == [1, 2, 3, 4, 5]


async def test_events_of_other_runs_are_not_delivered():
    broker = Broker(queue_max=100, keepalive_seconds=60)
    sub = broker.subscribe(uuid.uuid4())
    broker.publish(events(1, 3))
    assert not sub.has_after(0)


async def test_a_subscriber_that_falls_behind_is_closed_not_blocking_others():
    broker = Broker(queue_max=5, keepalive_seconds=60)
    slow = broker.subscribe(RUN)
    fast = broker.subscribe(RUN)
    broker.publish(events(1, 4))
    assert [e.seq for e in await fast.next_batch()] == [1, 2, 3, 4]
    broker.publish(events(5, 4))  # slow now holds 8 > 5
    assert await slow.next_batch() is None  # overflowed: its stream ends, client resumes by id
    assert [e.seq for e in await fast.next_batch()] == [5, 6, 7, 8]


async def test_keepalive_only_for_idle_subscribers():
    broker = Broker(queue_max=100, keepalive_seconds=0.05)
    await broker.start()
    try:
        idle = broker.subscribe(RUN)
        assert await asyncio.wait_for(idle.next_batch(), 1) == []  # a keep-alive
    finally:
        await broker.stop()


async def test_unsubscribe_forgets_the_run():
    broker = Broker(queue_max=100, keepalive_seconds=60)
    sub = broker.subscribe(RUN)
    assert broker.subscriber_count(RUN) == 1
    broker.unsubscribe(sub)
    assert broker.subscriber_count(RUN) == 0


async def test_a_poke_beyond_the_cursor_wakes_the_reader_once():
    """Events another node stored arrive as pokes (runtime/runs/feed.py): the reader wakes
    only for a seq past its cursor, and takes the poke once."""
    broker = Broker(queue_max=100, keepalive_seconds=60)
    sub = broker.subscribe(RUN)
    assert broker.subscribed_runs() == [RUN]
    broker.poke(RUN, 4)
    waiting = asyncio.ensure_future(sub.next_batch(after=4))  # not past the cursor: waits
    await asyncio.sleep(0.01)
    assert not waiting.done()
    broker.poke(RUN, 7)
    assert await asyncio.wait_for(waiting, 5) == []
    assert sub.take_stored() == 7
    assert sub.take_stored() == 0
    broker.poke(uuid.uuid4(), 9)  # another run's: nothing for this subscriber
    assert sub.take_stored() == 0
