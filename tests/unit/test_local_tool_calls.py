"""The local model's tool-call handler: what counts as a call, how it is parsed, and that
the repair grammar llama.cpp receives parses (needs llama-cpp-python, the [local] extra)."""

from __future__ import annotations

import importlib.util

import pytest

pytestmark = [
    pytest.mark.local_model,
    pytest.mark.skipif(
        importlib.util.find_spec("llama_cpp") is None, reason="llama-cpp-python not installed"
    ),
]


def test_calls_with_or_without_tags_parse_and_unknown_tools_do_not() -> None:
    from runtime.local_tool_calls import looks_like_call, parse_tool_call

    names = {"coding_agent_read_file"}
    bare = '{\n "name": "coding_agent_read_file", "arguments": {"path": "src/App.tsx"}\n}'
    tagged = f"<tool_call>\n{bare}\n</tool_call>"
    expected = ("coding_agent_read_file", '{"path": "src/App.tsx"}')
    assert parse_tool_call(bare, names) == expected
    assert parse_tool_call(tagged, names) == expected
    assert parse_tool_call('{"name": "rm_rf", "arguments": {}}', names) is None
    assert parse_tool_call('<tool_call>\n{"name": "coding_agent_read_file"', names) is None
    assert looks_like_call("  {") and looks_like_call("<tool_call>")
    assert not looks_like_call("I changed the heading.")
    # Sampling stops at the closing tag: a complete object without it is a call.
    assert parse_tool_call(f"<tool_call>\n{bare}\n", names) == expected
    # A call written as a fenced block (seen from the 0.5B model) is a call too.
    assert parse_tool_call(f"```json\n{bare}\n```", names) == expected
    assert parse_tool_call(f"```\n{tagged}\n```\nDone.", names) == expected
    assert looks_like_call("```")


def test_only_replies_meant_as_calls_are_repaired() -> None:
    from runtime.local_tool_calls import attempts_call

    assert attempts_call('<tool_call>\n{"name": "coding_agent_read_file", "argu')
    assert attempts_call('{"name": "read", "arguments": [1, 2]}')
    # A small model echoing a tool result is answering, not calling.
    assert not attempts_call('{"ok": true, "summary": "Patch applied: 1 file(s) changed"}')
    assert not attempts_call("<h1>Runwright Chat</h1> is the new heading.")
    assert attempts_call('```json\n{"name": "coding_agent_rename_file", "arguments": {"fr')
    assert not attempts_call("```tsx\n<h1>Runwright Chat</h1>\n```")  # code, not a call


def test_the_repair_grammar_of_the_real_toolpack_parses() -> None:
    from llama_cpp import llama_grammar

    from runtime.local_tool_calls import tool_call_grammar
    from runtime.settings import Settings
    from runtime.tools import Toolpack

    grammar = tool_call_grammar(Toolpack(Settings()).openai_tools())
    assert grammar.startswith('root ::= "<tool_call>\\n" call-json')
    assert '"\\"coding_agent_apply_patch\\""' in grammar
    llama_grammar.LlamaGrammar.from_string(grammar, verbose=False)


def test_sampling_stops_once_a_call_is_complete() -> None:
    from runtime.local_tool_calls import _stream_chunks

    sampled_texts: list[str] = []
    call = '{"name": "coding_agent_edit_file", "arguments": {"path": "src/App.tsx"}}'

    def sampler():  # what the 0.5B model wrote: a bare call, then an imitated result
        for text in (call[:30], call[30:], "\n", '{"ok": true, ', '"summary": "x"}'):
            sampled_texts.append(text)
            yield {"choices": [{"text": text, "finish_reason": None}]}

    chunks = list(_stream_chunks(sampler(), {"coding_agent_edit_file"}, repair=lambda: None))
    deltas = [c["choices"][0]["delta"] for c in chunks]
    calls = [d["tool_calls"][0]["function"] for d in deltas if "tool_calls" in d]
    assert calls == [{"name": "coding_agent_edit_file", "arguments": '{"path": "src/App.tsx"}'}]
    assert not any("content" in d for d in deltas)
    assert sampled_texts == [call[:30], call[30:]]  # nothing was sampled after the call
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
