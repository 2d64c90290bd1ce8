"""The event feed (runtime/runs/feed.py): ``rw_events`` announcements become pokes of this
node's streams, except the node's own (it publishes what it writes itself)."""

from __future__ import annotations

import uuid

from runtime.cluster import channels
from runtime.runs.broker import Broker
from runtime.runs.feed import EventFeed
from storage.events import EventStore

RUN = uuid.uuid4()
NODE = "host-a:4242"  # the default node id form, <host>:<pid>: it holds a colon


def _feed() -> tuple[EventFeed, Broker]:
    broker = Broker(queue_max=100, keepalive_seconds=60)
    # The store is read only by the slow poll, which these tests do not reach.
    return EventFeed(broker, EventStore(None), NODE), broker  # type: ignore[arg-type]


def test_the_payload_carries_run_seq_and_origin():
    assert channels.parse_events(f"{RUN}:7:{NODE}") == (RUN, 7, NODE)
    assert channels.parse_events(f"{RUN}:7:") == (RUN, 7, "")
    assert channels.parse_events(f"{RUN}:7") == (RUN, 7, "")  # the form before origins
    assert channels.parse_events("nonsense") is None
    assert channels.parse_events(f"{RUN}:x:{NODE}") is None


def test_work_payloads_name_their_origin():
    assert channels.work_origin(f"{RUN}:{NODE}") == NODE
    assert channels.work_origin(f"{RUN}:") == ""
    assert channels.work_origin(str(RUN)) == ""  # the form before origins


async def test_announcements_of_other_nodes_poke_the_streams():
    feed, broker = _feed()
    sub = broker.subscribe(RUN)
    feed.on_events(f"{RUN}:5:host-b:99")
    assert sub.take_stored() == 5
    feed.on_events(f"{RUN}:6:")  # no node (a tool): every node hears it
    assert sub.take_stored() == 6


async def test_own_announcements_are_left_to_the_local_publish():
    feed, broker = _feed()
    sub = broker.subscribe(RUN)
    feed.on_events(f"{RUN}:5:{NODE}")
    assert sub.take_stored() == 0
    feed.on_events(f"{RUN}:6:{NODE}x")  # another node whose id starts like ours
    assert sub.take_stored() == 6


async def test_a_malformed_announcement_is_ignored():
    feed, broker = _feed()
    sub = broker.subscribe(RUN)
    feed.on_events("not-a-run:1:x")
    assert sub.take_stored() == 0
