"""The LangGraph side of ``bench.compare_langgraph``: a one-node graph whose node streams a
chat completion from the benchmark's scripted OpenAI-compatible server (``bench.openai_stub``,
``BENCH_MODEL_URL``) with the official OpenAI SDK and emits every content delta as a custom
stream event (``get_stream_writer``), as Runwright's native engine emits ``assistant.delta``.

Runs in the LangGraph benchmark venv (``bench/langgraph/setup.sh``), never the product's.
"""

from __future__ import annotations

import os
from typing import TypedDict

from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from openai import AsyncOpenAI

# One client per server process (connection pool reused across runs), like Runwright's
# per-binding client cache.
client = AsyncOpenAI(base_url=os.environ["BENCH_MODEL_URL"], api_key="not-needed", max_retries=0)


class State(TypedDict, total=False):
    input: str
    output: str


async def agent(state: State) -> State:
    """Stream the model's reply; each content delta becomes a custom stream event."""
    write = get_stream_writer()
    parts: list[str] = []
    stream = await client.chat.completions.create(
        model="bench-model",
        messages=[{"role": "user", "content": state.get("input", "Say hello.")}],
        stream=True,
    )
    async for chunk in stream:
        for choice in chunk.choices:
            if choice.delta.content:
                parts.append(choice.delta.content)
                write({"delta": choice.delta.content})
    return {"output": "".join(parts)}


graph = StateGraph(State).add_node("agent", agent).add_edge(START, "agent")
graph = graph.add_edge("agent", END).compile()
