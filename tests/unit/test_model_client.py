"""runtime.model_client against the scripted OpenAI-compatible server."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from runtime.egress import EgressPolicy
from runtime.engine import ModelTarget
from runtime.model_client import (
    EncodedTools,
    ModelClient,
    ModelError,
    StreamEnd,
    TextDelta,
    ToolCall,
)
from tests.support import fixtures_openai
from tests.support.scripted_openai import (
    ScriptedOpenAI,
    ScriptedToolCall,
    error_reply,
    hang_reply,
    text_reply,
    tool_call_reply,
)

scripted_openai = fixtures_openai.scripted_openai
dead_openai_url = fixtures_openai.dead_openai_url

MESSAGES = [{"role": "user", "content": "hi"}]


async def _collect(client: ModelClient, **kw: object) -> list[object]:
    return [event async for event in client.stream(model="m", messages=MESSAGES, **kw)]


async def test_text_deltas_then_end(scripted_openai: ScriptedOpenAI) -> None:
    scripted_openai.push(text_reply("Hello world", chunk_size=3))
    async with ModelClient(scripted_openai.base_url) as client:
        events = await _collect(client)
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Hel", "lo ", "wor", "ld"]
    assert events[-1] == StreamEnd(finish_reason="stop", usage=None)
    body = scripted_openai.bodies[0]
    assert body["stream"] is True and body["model"] == "m" and "tools" not in body
    assert scripted_openai.requests[-1].headers["authorization"] == "Bearer not-needed"


async def test_tool_calls_are_assembled_in_index_order(scripted_openai: ScriptedOpenAI) -> None:
    calls = (
        ScriptedToolCall("coding_agent_read_file", {"path": "a.md"}, id="c1", pieces=4),
        ScriptedToolCall("coding_agent_list_files", {}, id="c2"),
    )
    scripted_openai.push(tool_call_reply(*calls, text="Looking."))
    tools = [{"type": "function", "function": {"name": "coding_agent_read_file"}}]
    async with ModelClient(scripted_openai.base_url) as client:
        events = await _collect(client, tools=tools, include_usage=True)
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Looking."
    assert [e for e in events if isinstance(e, ToolCall)] == [
        ToolCall("c1", "coding_agent_read_file", '{"path": "a.md"}'),
        ToolCall("c2", "coding_agent_list_files", "{}"),
    ]
    end = events[-1]
    assert isinstance(end, StreamEnd) and end.finish_reason == "tool_calls"
    assert end.usage is not None and "total_tokens" in end.usage
    assert scripted_openai.bodies[0]["tools"] == tools


async def test_encoded_tools_send_the_same_body(scripted_openai: ScriptedOpenAI) -> None:
    """Tools encoded once (EncodedTools) reach the endpoint exactly as a list does, with
    every other field; none encoded sends no ``tools``."""
    tools = [
        {"type": "function", "function": {"name": "coding_agent_read_file", "description": "é"}},
        {"type": "function", "function": {"name": "coding_agent_list_files"}},
    ]
    scripted_openai.push(text_reply("a"), text_reply("b"), text_reply("c"))
    async with ModelClient(scripted_openai.base_url) as client:
        await _collect(client, tools=tools, max_tokens=7, include_usage=True)
        await _collect(client, tools=EncodedTools.of(tools), max_tokens=7, include_usage=True)
        await _collect(client, tools=EncodedTools.of([]))
    plain, encoded, empty = scripted_openai.bodies
    assert encoded == plain and encoded["tools"] == tools and encoded["max_tokens"] == 7
    assert encoded["stream_options"] == {"include_usage": True}
    assert "tools" not in empty and empty["messages"] == MESSAGES


async def test_api_key_is_sent_as_the_bearer_key(scripted_openai: ScriptedOpenAI) -> None:
    scripted_openai.push(text_reply("ok"))
    async with ModelClient(scripted_openai.base_url, api_key="sk-test-123") as client:
        await _collect(client)
        assert "sk-test-123" not in repr(client)
    assert scripted_openai.requests[-1].headers["authorization"] == "Bearer sk-test-123"


def test_a_credential_problem_is_a_config_error_before_any_connection() -> None:
    target = ModelTarget(uuid.uuid4(), "openai", "m", "http://127.0.0.1:9/v1",
                         credential_error="the model's API key is not available")  # fmt: skip
    with pytest.raises(ModelError, match="API key is not available") as info:
        ModelClient.for_target(target, timeout=5, egress=EgressPolicy())
    assert info.value.kind == "config"


async def test_connection_refused_names_endpoint(dead_openai_url: str) -> None:
    async with ModelClient(dead_openai_url) as client:
        with pytest.raises(ModelError) as info:
            await _collect(client)
    assert info.value.kind == "connection"
    assert f"model endpoint {dead_openai_url} is unreachable" in str(info.value)
    assert "refused" in str(info.value).lower()


@pytest.mark.parametrize("status", [400, 401, 404, 429, 500, 503])
async def test_http_error_carries_provider_message(
    scripted_openai: ScriptedOpenAI, status: int
) -> None:
    scripted_openai.push(error_reply(status, f"provider says no ({status})"))
    async with ModelClient(scripted_openai.base_url) as client:
        with pytest.raises(ModelError) as info:
            await _collect(client)
    assert info.value.kind == "status" and info.value.status == status
    assert str(info.value) == (
        f"model endpoint {scripted_openai.base_url} answered HTTP {status}: "
        f'"provider says no ({status})"'
    )
    assert len(scripted_openai.bodies) == 1  # no silent retries


async def test_timeout_before_first_byte(scripted_openai: ScriptedOpenAI) -> None:
    scripted_openai.push(hang_reply())
    async with ModelClient(scripted_openai.base_url, timeout=0.3) as client:
        with pytest.raises(ModelError, match=r"timed out \(no response within 0.3 s\)") as info:
            await _collect(client)
    assert info.value.kind == "timeout"
    await scripted_openai.wait_for_disconnect()


async def test_timeout_mid_stream(scripted_openai: ScriptedOpenAI) -> None:
    scripted_openai.push(hang_reply(after_chunks=2, text="partial answer"))
    seen: list[str] = []
    async with ModelClient(scripted_openai.base_url, timeout=0.3) as client:
        with pytest.raises(ModelError, match="timed out") as info:
            async for event in client.stream(model="m", messages=MESSAGES):
                if isinstance(event, TextDelta):
                    seen.append(event.text)
    assert info.value.kind == "timeout"
    assert seen  # the text before the stall was delivered
    await scripted_openai.wait_for_disconnect()


async def test_cancel_mid_stream_closes_upstream(scripted_openai: ScriptedOpenAI) -> None:
    scripted_openai.push(hang_reply(after_chunks=3, text="streaming forever"))
    first = asyncio.Event()

    async def consume(client: ModelClient) -> None:
        async for event in client.stream(model="m", messages=MESSAGES):
            if isinstance(event, TextDelta):
                first.set()

    async with ModelClient(scripted_openai.base_url) as client:
        task = asyncio.create_task(consume(client))
        await asyncio.wait_for(first.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await scripted_openai.wait_for_disconnect(within=5)
    assert scripted_openai.disconnects == 1


async def test_cancel_before_headers_closes_upstream(scripted_openai: ScriptedOpenAI) -> None:
    scripted_openai.push(hang_reply())
    async with ModelClient(scripted_openai.base_url) as client:
        task = asyncio.create_task(_collect(client))
        await scripted_openai.wait_for_requests(1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await scripted_openai.wait_for_disconnect(within=5)


async def test_list_models(scripted_openai: ScriptedOpenAI, dead_openai_url: str) -> None:
    async with ModelClient(scripted_openai.base_url) as client:
        assert await client.list_models() == ["scripted-model"]
    async with ModelClient(dead_openai_url) as client:
        with pytest.raises(ModelError, match="unreachable"):
            await client.list_models()


@pytest.mark.parametrize(
    "frame",
    [
        b"[1, 2]",
        b'{"choices": "everything"}',
        b'{"choices": [{"delta": {"content": 5}}]}',
        b'{"choices": [{"delta": {"tool_calls": [{"index": "a"}]}}]}',
        b'{"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"name": 7}}]}}]}',
    ],
    ids=["not-an-object", "choices-not-a-list", "content-not-text", "index-not-int", "name"],
)
async def test_a_malformed_chunk_is_a_protocol_error(frame: bytes) -> None:
    """Chunks are read as plain JSON (no SDK model per chunk): every field a run uses is
    type-checked, and a wrong type fails the stream as a protocol error naming the endpoint."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (await reader.readline()) not in (b"\r\n", b""):
            pass  # the request's headers; its body is not needed
        body = b'data: {"choices": [{"delta": {"content": "ok"}}]}\n\ndata: ' + frame + b"\n\n"
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                     b"Connection: close\r\n\r\n" + body)  # fmt: skip
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with ModelClient(f"http://127.0.0.1:{port}/v1") as client:
            seen: list[object] = []
            with pytest.raises(ModelError) as info:
                async for event in client.stream(model="m", messages=MESSAGES):
                    seen.append(event)
    finally:
        server.close()
        await server.wait_closed()
    assert seen == [TextDelta("ok")]
    assert info.value.kind == "protocol" and "127.0.0.1" in str(info.value)
