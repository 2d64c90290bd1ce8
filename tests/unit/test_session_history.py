"""A session's conversation (runtime/sessions/history.py) and the budget compaction that keeps
a tool call with its results (runtime/messages.py, contract 5)."""

from __future__ import annotations

import uuid

import pytest

from runtime.messages import compact
from runtime.runs.errors import SessionBusy
from runtime.sessions.history import INTERRUPTED_TOOL_RESULT, conversation, run_turns, well_formed
from runtime.sessions.strategy import follow_up
from storage.sessions import ActiveRun


def _call(call_id: str, arguments: str = "{}") -> dict:
    return {"id": call_id, "type": "function",
            "function": {"name": "coding_agent_read_file", "arguments": arguments}}  # fmt: skip


def test_a_tool_call_and_its_results_are_kept_or_dropped_together():
    history = [
        {"role": "user", "content": "u" * 10},
        {"role": "assistant", "content": None, "tool_calls": [_call("a", "x" * 20)]},
        {"role": "tool", "tool_call_id": "a", "content": "r" * 20},
        {"role": "assistant", "content": "d" * 5},
        {"role": "user", "content": "n" * 5},
    ]
    assert compact(history, 60) == history  # 10 + 20 + 20 + 5 + 5 fits
    squeezed = compact(history, 25)  # the 40-character call group no longer fits
    assert squeezed[1:] == [history[0], history[3], history[4]]
    assert squeezed[0]["content"].startswith("Context compacted: 2 earlier message(s)")


def test_plain_histories_compact_exactly_as_contract_5_says():
    history = [{"role": "user", "content": "a" * 30}, {"role": "assistant", "content": "b" * 5},
               {"role": "user", "content": "c" * 10}]  # fmt: skip
    assert compact(history, 20) == [
        {"role": "system",
         "content": "Context compacted: 1 earlier message(s) omitted to stay within budget."},
        history[1], history[2],
    ]  # fmt: skip


def test_calls_without_results_get_an_interrupted_result_and_strays_are_dropped():
    messages = [
        {"role": "tool", "tool_call_id": "stray", "content": "?"},
        {"role": "assistant", "content": None, "tool_calls": [_call("a"), _call("b")]},
        {"role": "tool", "tool_call_id": "a", "content": "ok"},
        {"role": "user", "content": "next"},
    ]
    assert well_formed(messages) == [
        messages[1],
        messages[2],
        {"role": "tool", "tool_call_id": "b", "content": INTERRUPTED_TOOL_RESULT},
        messages[3],
    ]


def test_a_runs_turns_and_the_next_runs_conversation():
    own = [{"role": "user", "content": "rename it"}]
    transcript = (
        {"role": "assistant", "content": None, "tool_calls": [_call("a")]},
        {"role": "tool", "tool_call_id": "a", "content": "{}"},
    )
    turns = run_turns(own, transcript, "half a repl")
    assert turns == [*own, *transcript, {"role": "assistant", "content": "half a repl"}]
    assert run_turns(own, (), "", final_text="done") == [
        *own, {"role": "assistant", "content": "done"}
    ]  # fmt: skip
    follow = [{"role": "user", "content": "and now?"}]
    assert conversation([turns], follow, 10_000) == [*turns, *follow]


def test_strategies_decide_on_the_active_runs():
    session = uuid.uuid4()
    running, queued = (ActiveRun(uuid.uuid4(), "running", 1), ActiveRun(uuid.uuid4(), "queued", 2))
    for strategy in ("reject", "enqueue", "interrupt", "rollback"):
        assert follow_up(session, strategy, []).cancel == ()
    with pytest.raises(SessionBusy) as busy:
        follow_up(session, "reject", [running, queued])
    assert busy.value.active_run_id == running.id
    assert follow_up(session, "enqueue", [running, queued]).cancel == ()
    interrupt = follow_up(session, "interrupt", [running, queued])
    assert interrupt.cancel == (queued.id, running.id) and not interrupt.discard
    assert follow_up(session, "rollback", [running]).discard
    with pytest.raises(ValueError):
        follow_up(session, "bogus", [running])
