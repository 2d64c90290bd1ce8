"""Run events: the vocabulary, the envelope and its one JSON encoding (contract section 3).

An event is encoded once, when its seq is assigned; the same text is stored in
``run_events`` and streamed to every subscriber, so a replay is byte-identical to the live
stream. JSON uses Python's default separators (``", "`` / ``": "``) and ``event`` comes first,
as the contract's clients expect.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from storage import json_encoding
from storage.events import EventRow

# Contract 3.3: the full vocabulary, with each type's stage, plus additive types.
STAGES: dict[str, str] = {
    "run.accepted": "run",
    "plan.updated": "plan",
    "assistant.delta": "assistant",
    "tool.started": "tool",
    "tool.completed": "tool",
    "tool.failed": "tool",
    "revision.created": "revision",
    "checkpoint.created": "checkpoint",
    "run.completed": "run",
    "run.failed": "run",
    # Additive (issue 12): a tool call waits for a person; the run pauses after it.
    "approval.requested": "tool",
    # Additive (issue 12 item 3): a model call ended; payload {"call", "usage"}.
    "usage.updated": "usage",
}
TERMINAL_TYPES = frozenset({"run.completed", "run.failed"})


def to_json(value: Any) -> str:
    """Encode like the reference: default separators, non-JSON values stringified.

    What Postgres's ``json`` type cannot take or give back is stored as
    :mod:`storage.json_encoding` stores it (one rule for every JSON the server writes):
    non-finite floats (``NaN``, ``Infinity``: Python's ``json`` parses them from a model's
    tool-call arguments or an upstream's answer) become the strings ``"NaN"``,
    ``"Infinity"``, ``"-Infinity"`` (the column refuses the bare tokens), and NUL and
    unpaired surrogates in strings and keys become U+FFFD (the column stores ``\\u0000``
    but ``->>`` cannot convert it to text: a restarted run reading its turn's text failed).
    """
    try:
        text = json.dumps(value, default=_default, allow_nan=False)
    except ValueError:
        return json.dumps(json_encoding.storable(value), default=_default, allow_nan=False)
    if not json_encoding.suspect(text):
        return text
    return json.dumps(json_encoding.storable(value), default=_default, allow_nan=False)


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return json_encoding.storable(str(value))


def iso(ts: datetime) -> str:
    """ISO 8601 in UTC with ``+00:00`` (the one timestamp format on every wire)."""
    return ts.astimezone(UTC).isoformat()


@dataclass(frozen=True, slots=True)
class EventDraft:
    """An event before its seq is assigned: type, payload object, diagnostics list."""

    type: str
    payload: dict[str, Any]
    diagnostics: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class RunEvent:
    """A numbered event of one run. ``envelope`` is the encoded JSON object (contract 3.2).

    ``fence`` is the claim token of the actor that made it: the event writer stores it only
    while the run still holds that token (None: unfenced, e.g. a replayed event).
    """

    run_id: uuid.UUID
    seq: int
    type: str
    envelope: str
    row: EventRow
    fence: int | None = None

    @property
    def terminal(self) -> bool:
        return self.type in TERMINAL_TYPES


def make_event(
    draft: EventDraft,
    *,
    run_id: uuid.UUID,
    app_id: uuid.UUID,
    seq: int,
    ts: datetime,
    fence: int | None = None,
) -> RunEvent:
    """Number and encode an event.

    Raises:
        KeyError: ``draft.type`` is not in the contract's vocabulary.
    """
    stage = STAGES[draft.type]
    row = EventRow(
        run_id, seq, draft.type, stage, to_json(draft.payload), to_json(list(draft.diagnostics)),
        ts,
    )  # fmt: skip
    return from_row(row, app_id, fence)


def from_row(row: EventRow, app_id: uuid.UUID, fence: int | None = None) -> RunEvent:
    """Rebuild the event from its stored row (replay), with the identical envelope text."""
    envelope = (
        f'{{"event": {json.dumps(row.type)}, "run_id": "{row.run_id}", "app_id": "{app_id}", '
        f'"seq": {row.seq}, "ts": "{iso(row.ts)}", "stage": {json.dumps(row.stage)}, '
        f'"payload": {row.payload}, "diagnostics": {row.diagnostics}}}'
    )
    return RunEvent(row.run_id, row.seq, row.type, envelope, row, fence)


# The diagnostic of an event stored in place of one Postgres refused (docs/architecture.md,
# "Failure handling"): the same seq, type and stage, this payload and diagnostic.
UNSTORABLE_CODE = "EVENT_UNSTORABLE"


def unstorable(event: RunEvent, reason: str) -> RunEvent:
    """The event to store in place of ``event``, whose row Postgres refused for its data
    (the event writer, after isolating it): the same run, seq, type, stage, time and claim
    token, payload ``{"unstorable": true, "reason": reason}`` and one diagnostic
    ``{"code": "EVENT_UNSTORABLE", "message": ...}``. The log keeps its seq contiguous and
    says where something was lost instead of losing it silently.

    Args:
        event: the refused event.
        reason: why, e.g. the driver's error class (``CheckViolationError``).
    """
    app_id = uuid.UUID(json.loads(event.envelope)["app_id"])
    message = f"This {event.type} event could not be stored ({reason}); its content is lost"
    row = event.row._replace(
        payload=to_json({"unstorable": True, "reason": reason}),
        diagnostics=to_json([{"code": UNSTORABLE_CODE, "message": message}]),
    )
    return from_row(row, app_id, event.fence)
