"""The NOTIFY channels nodes talk on, and their payloads (ids only; Postgres caps a payload
at 8000 bytes and delivers it when the sending transaction commits).

- :data:`WORK` (``rw_work``): a run became ``queued``; payload: ``<run_id>:<origin>``, the
  node that inserted it (``""``: none). Nodes with a free slot wake their claim loop (the
  queue itself is the runs table); the origin node submitted the run to itself already.
- :data:`EVENTS` (``rw_events``): ``<run_id>:<seq>:<origin>``: the run has stored events up
  to ``seq``, written by node ``origin`` (``""``: no node). Sent by the event batch insert
  itself (``storage/queries/events.sql``), so it is delivered exactly when the events are
  committed. Streams on every other node wake on it; the origin node ignores it (it
  publishes the events it wrote to its own streams after the commit).
- :data:`COMMANDS` (``rw_commands``): cancel relayed to a run's owner node, and the owner's
  answer (:mod:`runtime.runs.relay`); a small JSON object of ids and codes.
"""

from __future__ import annotations

import uuid

WORK = "rw_work"
EVENTS = "rw_events"
COMMANDS = "rw_commands"

ALL = (WORK, EVENTS, COMMANDS)
"""Every channel a node's listener LISTENs on."""


def parse_events(payload: str) -> tuple[uuid.UUID, int, str] | None:
    """``(run_id, seq, origin)`` of an :data:`EVENTS` payload, or None when it is malformed.
    The origin is everything after the second colon (a node id may hold colons); a payload
    without one (``<run_id>:<seq>``) has origin ``""``."""
    run, _, rest = payload.partition(":")
    seq, _, origin = rest.partition(":")
    try:
        return uuid.UUID(run), int(seq), origin
    except ValueError:
        return None


def work_origin(payload: str) -> str:
    """The origin node of a :data:`WORK` payload (``""`` when it names none)."""
    return payload.partition(":")[2]
