"""The model server killed (SIGKILL) or frozen (SIGSTOP) in the middle of a streamed reply
(issue 10, part 2 item 7): the native run ends once, as failed, within a bound; its log is
contiguous with exactly one terminal event; the text it kept is what the model had sent (a
prefix of the reply, never repeated); the model was called once."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from storage import models as models_store
from storage.models import BindingSpec
from tests.support.api import create_app_via_api
from tests.support.cluster import DATABASE, Cluster
from tests.support.faults import (
    assert_log_intact,
    assistant_text,
    event_log,
    final_log,
    wait_settled,
)
from tests.support.model_process import ModelProcess, chunks_of
from tests.support.runs import create_run

CHUNKS = 60
WITHIN = 120.0


@pytest.fixture
def settings(make_settings: Any) -> Any:
    # A frozen server is noticed after this many seconds without a byte.
    return make_settings(model_request_timeout_seconds=3.0, readiness_interval_seconds=0.2)


@pytest.fixture
async def model(tmp_path: Path) -> AsyncIterator[ModelProcess]:
    server = ModelProcess(tmp_path / "model-calls.log", chunks=CHUNKS, delay=0.1)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def _native_run(client: Any, owner: Any, db: Any, model: ModelProcess) -> str:
    await models_store.create_model(
        db, tenant_id=owner.tenant_id, name="faulty", is_default=True, status="active",
        bindings=[BindingSpec(provider="openai", provider_model_id="scripted-model",
                              base_url=model.base_url)],
    )  # fmt: skip
    app, _ = await create_app_via_api(client, owner.headers)
    run = await create_run(client, app["id"], owner.headers, input="talk", engine="native")
    return str(run["run_id"])


async def _until_some_text(dsn: str, run_id: str) -> None:
    deadline = asyncio.get_running_loop().time() + WITHIN
    while not assistant_text(await event_log(dsn, run_id)):
        assert asyncio.get_running_loop().time() < deadline, "no assistant text arrived"
        await asyncio.sleep(0.05)


async def _check(dsn: str, run_id: str, model: ModelProcess) -> None:
    statuses = await wait_settled(dsn, [run_id], within=WITHIN)
    assert statuses[run_id] == "failed", statuses
    events = await final_log(dsn, run_id)
    assert_log_intact(events)
    text, reply = assistant_text(events), "".join(chunks_of(CHUNKS))
    assert text and reply.startswith(text) and text != reply, text
    assert model.calls == 1


@pytest.mark.parametrize("fault", ["killed", "frozen"])
async def test_a_model_server_that_dies_or_freezes_mid_reply_fails_the_run_once(
    cluster: Cluster, client: Any, owner: Any, db: Any, model: ModelProcess, fault: str
) -> None:
    dsn = cluster.dsn(DATABASE)
    run_id = await _native_run(client, owner, db, model)
    await _until_some_text(dsn, run_id)
    model.signal(signal.SIGKILL if fault == "killed" else signal.SIGSTOP)
    await _check(dsn, run_id, model)
