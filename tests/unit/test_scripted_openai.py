"""The scripted OpenAI-compatible server speaks the protocol the official SDK expects."""

from __future__ import annotations

import asyncio
import json

import httpx
import openai
import pytest

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


def _client(server: ScriptedOpenAI, **kw: object) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=server.base_url, api_key="none", max_retries=0, **kw)


async def test_models_and_non_stream(scripted_openai: ScriptedOpenAI) -> None:
    scripted_openai.push(text_reply("Hello there"))
    async with _client(scripted_openai) as client:
        models = await client.models.list()
        assert [m.id for m in models.data] == ["scripted-model"]
        done = await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}]
        )
    assert done.choices[0].message.content == "Hello there"
    assert done.choices[0].finish_reason == "stop"
    assert scripted_openai.bodies[0]["messages"] == [{"role": "user", "content": "hi"}]


async def test_stream_text_and_tool_calls(scripted_openai: ScriptedOpenAI) -> None:
    call = ScriptedToolCall("coding_agent_read_file", {"path": "src/App.tsx"}, id="call_1")
    scripted_openai.push(tool_call_reply(call, text="Let me look.", delay=0.001))
    async with _client(scripted_openai) as client:
        stream = await client.chat.completions.create(
            model="m",
            messages=[{"role": "user", "content": "go"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        text, args, names, ids, finish, usage = "", "", [], [], None, None
        async with stream:
            async for chunk in stream:
                usage = chunk.usage or usage
                if not chunk.choices:
                    continue
                choice = chunk.choices[0]
                text += choice.delta.content or ""
                for tc in choice.delta.tool_calls or []:
                    ids += [tc.id] if tc.id else []
                    if tc.function and tc.function.name:
                        names.append(tc.function.name)
                    args += (tc.function.arguments or "") if tc.function else ""
                finish = choice.finish_reason or finish
    assert text == "Let me look."
    assert names == ["coding_agent_read_file"] and ids == ["call_1"]
    assert json.loads(args) == {"path": "src/App.tsx"}
    assert finish == "tool_calls"
    assert usage is not None and usage.total_tokens >= 0
    await scripted_openai.wait_for_completed(1)
    assert scripted_openai.disconnects == 0


async def test_error_status_carries_message(scripted_openai: ScriptedOpenAI) -> None:
    scripted_openai.push(error_reply(503, "model overloaded"))
    async with _client(scripted_openai) as client:
        with pytest.raises(openai.APIStatusError) as info:
            await client.chat.completions.create(model="m", messages=[], stream=True)
    assert info.value.status_code == 503
    assert "model overloaded" in str(info.value)


async def test_empty_queue_is_a_visible_500(scripted_openai: ScriptedOpenAI) -> None:
    async with httpx.AsyncClient() as client:
        resp = await client.post(scripted_openai.base_url + "/chat/completions", json={})
    assert resp.status_code == 500
    assert "no reply queued" in resp.json()["error"]["message"]


async def test_keep_alive_serves_sequential_requests(scripted_openai: ScriptedOpenAI) -> None:
    scripted_openai.push(*(text_reply(f"reply {i}") for i in range(5)))
    async with _client(scripted_openai) as client:
        for i in range(5):
            stream = await client.chat.completions.create(model="m", messages=[], stream=True)
            async with stream:
                parts = [c.choices[0].delta.content or "" async for c in stream if c.choices]
            assert "".join(parts) == f"reply {i}"
    await scripted_openai.wait_for_completed(5)


async def test_client_disconnect_mid_stream_is_observed(scripted_openai: ScriptedOpenAI) -> None:
    scripted_openai.push(hang_reply(after_chunks=2, text="partial text"))
    async with _client(scripted_openai) as client:
        stream = await client.chat.completions.create(model="m", messages=[], stream=True)
        async with stream:
            async for _chunk in stream:
                break
    await scripted_openai.wait_for_disconnect(within=5)
    assert scripted_openai.disconnects == 1


async def test_hang_before_headers_times_out(scripted_openai: ScriptedOpenAI) -> None:
    scripted_openai.push(hang_reply())
    async with _client(scripted_openai, timeout=0.3) as client:
        with pytest.raises(openai.APITimeoutError):
            await client.chat.completions.create(model="m", messages=[])
    await scripted_openai.wait_for_disconnect(within=5)


async def test_responder_and_default(scripted_openai: ScriptedOpenAI) -> None:
    scripted_openai.default = lambda body: text_reply(f"echo {len(body['messages'])}")
    async with _client(scripted_openai) as client:
        for n in (1, 2):
            msgs = [{"role": "user", "content": "x"}] * n
            done = await client.chat.completions.create(model="m", messages=msgs)
            assert done.choices[0].message.content == f"echo {n}"


async def test_stop_with_open_hanging_stream_is_clean() -> None:
    server = ScriptedOpenAI().start()
    server.push(hang_reply(after_chunks=0))
    try:
        async with httpx.AsyncClient() as client:
            req = client.build_request(
                "POST", server.base_url + "/chat/completions", json={"stream": True}
            )
            resp = await client.send(req, stream=True)
            assert resp.status_code == 200
            await asyncio.to_thread(server.stop)
            with pytest.raises(httpx.HTTPError):
                await resp.aread()
            await resp.aclose()
    finally:
        server.stop()


async def test_dead_url_refuses(dead_openai_url: str) -> None:
    async with openai.AsyncOpenAI(base_url=dead_openai_url, api_key="x", max_retries=0) as c:
        with pytest.raises(openai.APIConnectionError):
            await c.models.list()
