"""A session's conversation: the turns each run adds, and what a follow-up's model sees.

A session run's *turns* are its own input messages (contract 5: the client's messages and
its prompt, last), then what its engine recorded: the native engine's transcript
(assistant replies, tool calls and the tool results as it sent them back to the model,
:class:`runtime.engine.Transcript`), then any assistant text streamed after the last
transcript entry (the partial reply of an interrupted turn). Engines that record no
transcript contribute their streamed text, or their final answer.

They are stored with the run's final status (``agent_runs.session_turns``). When a later
run of the session starts, the earlier runs' turns, in session order, come before its own
messages, and the whole is compacted by the contract 5 budget
(:func:`runtime.messages.compact`, which keeps a tool call and its results together).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

from runtime.messages import compact
from storage.database import Database
from storage.sessions import SessionStore

INTERRUPTED_TOOL_RESULT = (
    '{"error": "The run was stopped before this tool call finished", "code": "TOOL_INTERRUPTED"}'
)
"""The result a follow-up's model sees for a tool call whose run ended before its result."""


def run_turns(
    own_messages: Sequence[dict[str, Any]],
    transcript: Sequence[dict[str, Any]],
    partial_text: str,
    final_text: str | None = None,
) -> list[dict[str, Any]]:
    """The turns one run adds to its session.

    Args:
        own_messages: the run's stored input messages (ending with its prompt).
        transcript: the engine's recorded messages (native: assistant and tool messages).
        partial_text: assistant text streamed after the transcript's last entry.
        final_text: the run's answer when nothing else says what the assistant replied.
    """
    turns = [dict(m) for m in own_messages]
    turns.extend(dict(m) for m in transcript)
    if partial_text.strip():
        turns.append({"role": "assistant", "content": partial_text})
    elif not transcript and final_text:
        turns.append({"role": "assistant", "content": final_text})
    return turns


def well_formed(messages: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """``messages`` as a model endpoint accepts them: each assistant ``tool_calls`` message
    is followed by exactly one ``tool`` result per call (a missing one, from a run stopped
    mid-call, becomes :data:`INTERRUPTED_TOOL_RESULT`); stray ``tool`` messages are dropped.
    """
    out: list[dict[str, Any]] = []
    i = 0
    while i < len(messages):
        message = messages[i]
        i += 1
        if message.get("role") == "tool":
            continue  # answers no call right before it
        out.append(message)
        calls = message.get("tool_calls") if message.get("role") == "assistant" else None
        if not calls:
            continue
        ids = [call.get("id") for call in calls if isinstance(call, dict)]
        answered: set[Any] = set()
        while i < len(messages) and messages[i].get("role") == "tool":
            result = messages[i]
            i += 1
            call_id = result.get("tool_call_id")
            if call_id in ids and call_id not in answered:
                answered.add(call_id)
                out.append(result)
        for call_id in ids:
            if call_id not in answered:
                out.append(
                    {"role": "tool", "tool_call_id": call_id, "content": INTERRUPTED_TOOL_RESULT}
                )
    return out


def conversation(
    earlier: Sequence[Sequence[dict[str, Any]]],
    own_messages: Sequence[dict[str, Any]],
    budget_chars: int,
) -> list[dict[str, Any]]:
    """What a session run's model sees after the system instructions: the earlier runs'
    turns in session order, then the run's own messages, made well formed and compacted
    to ``budget_chars`` (contract 5)."""
    messages = [dict(m) for turns in earlier for m in turns]
    messages.extend(dict(m) for m in own_messages)
    return compact(well_formed(messages), budget_chars)


class SessionHistory:
    """Reads a session's earlier turns for a run that starts.

    Args:
        db: returns the started :class:`Database`.
        budget_chars: the contract 5 budget (``RUNWRIGHT_MESSAGE_BUDGET_CHARS``).
    """

    def __init__(self, db: Callable[[], Database], budget_chars: int) -> None:
        self._db = db
        self.budget_chars = budget_chars

    async def messages_for(self, row: dict[str, Any]) -> list[dict[str, Any]]:
        """The conversation of a session run (``row``: its stored row): see
        :func:`conversation`. A run without a session gets its stored messages."""
        own = list(row["input_params"].get("messages") or [])
        session_id: uuid.UUID | None = row.get("session_id")
        if session_id is None:
            return own
        earlier = await SessionStore(self._db()).earlier_turns(session_id, row["session_seq"])
        return conversation(earlier, own, self.budget_chars)
