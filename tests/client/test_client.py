"""The Python client (runwright.client) against a real server on loopback: every call,
errors carrying the API's detail, the stream's reconnect without loss or repeat, and
retries with one Idempotency-Key (the server creates the run once)."""

from __future__ import annotations

import asyncio
import re
import uuid

import httpx
import pytest

from runtime.processes import free_port
from runwright.client import (
    AsyncClient,
    BadRequest,
    Client,
    Conflict,
    NotFound,
    RetryPolicy,
    Run,
    TransportError,
    Unauthorized,
    ValidationFailed,
)
from tests.client.conftest import Live
from tests.support.relay import Relay

FAST = RetryPolicy(attempts=4, backoff=0.05, max_backoff=0.2)
SLOW_SCRIPT = [
    {"delta": "Reading the file. "},
    {"tool": "read_file", "input": {"path": "src/App.tsx"}, "output": {"ok": True}},
    {"sleep_ms": 300},
    {"delta": "Patching it. "},
    {"tool": "apply_patch", "input": {"patch": "x"}, "output": {"ok": True}},
    {"sleep_ms": 300},
    {"delta": "Done."},
]


async def _app(rw: AsyncClient) -> str:
    app = await rw.create_app("Client test", f"client-{uuid.uuid4().hex[:10]}")
    return str(app.id)


async def _stored(live: Live, app_id: str, run_id: uuid.UUID) -> list[int]:
    """The seqs the server has for the run (a fresh, plain read of the whole stream)."""
    async with AsyncClient(live.base_url, live.token) as rw:
        return [e.seq async for e in rw.stream(app_id, run_id)]


async def test_sync_client_creates_streams_lists_and_gets(live: Live):
    def scenario() -> tuple[Run, list[str], list[int], Run, list[Run], Run]:
        with Client(live.base_url, live.token, tenant_id=live.owner.tenant_id) as rw:
            app = rw.create_app("Sync", f"sync-{uuid.uuid4().hex[:10]}")
            state = rw.builder_state(app.id)
            assert state.current_draft_revision is not None
            assert "src/App.tsx" in state.current_draft_revision.files
            run = rw.create_run(app.id, "go", engine="scripted", script=SLOW_SCRIPT[:2],
                                base_revision_id=state.current_draft_revision.id)  # fmt: skip
            events = list(rw.stream(app.id, run.run_id))
            final = rw.get_run(app.id, run.run_id)
            listed = rw.list_runs(app.id, limit=5)
            again = rw.cancel_run(app.id, run.run_id)  # finished: comes back unchanged
            return run, [e.event for e in events], [e.seq for e in events], final, listed, again

    run, types, seqs, final, listed, again = await asyncio.to_thread(scenario)
    assert run.status in ("queued", "running")
    assert types[0] == "run.accepted" and types[-1] == "run.completed"
    assert "tool.started" in types and "assistant.delta" in types
    assert seqs == list(range(1, len(seqs) + 1))
    assert final.status == "completed" and final.finished
    assert [r.run_id for r in listed] == [run.run_id]
    assert again.status == "completed"


async def test_async_client_cancel_and_resume(live: Live):
    async with AsyncClient(live.base_url, live.token) as rw:
        app_id = await _app(rw)
        hanging = await rw.create_run(app_id, "wait", engine="scripted", script=[{"hang": True}])
        cancelled = await rw.cancel_run(app_id, hanging.run_id)
        assert cancelled.status == "cancelled"

        script = [{"pause": {"question": "ok?"}}, {"delta": "yes"}]
        pausing = await rw.create_run(app_id, "ask", engine="scripted", script=script)
        first = [e async for e in rw.stream(app_id, pausing.run_id)]
        assert first[-1].event == "run.completed"  # a paused run's stream ends (contract 3.3)
        assert (await rw.get_run(app_id, pausing.run_id)).status == "paused"
        resumed = await rw.resume_run(
            app_id, pausing.run_id, {"answer": "yes"}, idempotency_key="resume-1"
        )
        assert resumed.status in ("queued", "running")
        rest = [e async for e in rw.stream(app_id, pausing.run_id, after=first[-1].seq)]
        assert rest[0].seq == first[-1].seq + 1
        assert {"resumed_with": {"answer": "yes"}} in [e.payload for e in rest]
        assert (await rw.get_run(app_id, pausing.run_id)).status == "completed"
        with pytest.raises(Conflict) as conflict:
            await rw.resume_run(app_id, pausing.run_id, {})
        assert conflict.value.detail == "Run is not paused"
        # A repeat of the resume it applied (its key) gets the run, not 409.
        again = await rw.resume_run(
            app_id, pausing.run_id, {"answer": "yes"}, idempotency_key="resume-1"
        )
        assert again.status == "completed"


async def test_a_stream_ticket_opens_the_stream_without_the_token(live: Live):
    async with AsyncClient(live.base_url, live.token) as rw:
        app_id = await _app(rw)
        run = await rw.create_run(app_id, "go", engine="scripted", script=[{"delta": "x"}])
        ticket = await rw.stream_ticket(app_id, run.run_id)
    assert ticket.stream_url.endswith(f"ticket={ticket.ticket}")
    async with httpx.AsyncClient(base_url=live.base_url, timeout=30) as plain:
        response = await plain.get(ticket.stream_url)  # no Authorization header
    assert response.status_code == 200
    assert '"event": "run.completed"' in response.text


async def test_errors_carry_the_apis_detail(live: Live):
    async with AsyncClient(live.base_url, live.token) as rw:
        app_id = await _app(rw)
        with pytest.raises(NotFound) as missing:
            await rw.get_run(app_id, uuid.uuid4())
        assert missing.value.status == 404
        assert missing.value.detail == "Coding-agent run not found"
        assert "Coding-agent run not found" in str(missing.value)
        with pytest.raises(BadRequest) as blank:
            await rw.create_run(app_id, "   ")
        assert blank.value.detail == "input is required"
        with pytest.raises(Conflict) as stale:
            await rw.create_run(app_id, "x", base_revision_id=uuid.uuid4())
        assert stale.value.code == "REVISION_CONFLICT"
        with pytest.raises(ValidationFailed) as invalid:
            await rw.create_run(app_id, "x", engine="scripted", script=[{"nonsense": 1}])
        assert invalid.value.detail[0]["loc"] == ["body", "script"]
        with pytest.raises(NotFound):
            [e async for e in rw.stream(app_id, uuid.uuid4())]
    async with AsyncClient(live.base_url, "not-a-token") as bad:
        with pytest.raises(Unauthorized) as unauthorized:
            await bad.list_runs(app_id)
        assert unauthorized.value.detail == "Could not validate principal token"


async def test_async_stream_reconnects_with_last_event_id_after_a_cut(live: Live):
    async with Relay(live.port).running() as relay:
        async with AsyncClient(live.base_url, live.token) as direct:
            app_id = await _app(direct)
            run = await direct.create_run(app_id, "go", engine="scripted", script=SLOW_SCRIPT)
        seen = []
        async with AsyncClient(relay.base_url, live.token, retry=FAST) as rw:
            async for event in rw.stream(app_id, run.run_id):
                seen.append(event.seq)
                if event.seq == 3:
                    relay.cut_all()
    assert seen == list(range(1, len(seen) + 1)) == await _stored(live, app_id, run.run_id)
    streams = [r for r in relay.requests if b"/stream" in r]
    assert len(streams) >= 2
    resumed = re.search(rb"(?i)last-event-id: (\d+)\r\n", streams[1])
    assert resumed is not None  # the reconnect resumed after what had been yielded
    assert 3 <= int(resumed.group(1)) < seen[-1]


async def test_sync_stream_reconnects_and_never_repeats(live: Live):
    loop = asyncio.get_running_loop()
    async with AsyncClient(live.base_url, live.token) as direct:
        app_id = await _app(direct)
        run = await direct.create_run(app_id, "go", engine="scripted", script=SLOW_SCRIPT)

    async with Relay(live.port).running() as relay:

        def consume() -> list[int]:
            seqs = []
            with Client(relay.base_url, live.token, retry=FAST) as rw:
                for event in rw.stream(app_id, run.run_id, after=1):
                    seqs.append(event.seq)
                    if len(seqs) in (2, 4):
                        loop.call_soon_threadsafe(relay.cut_all)
            return seqs

        seen = await asyncio.to_thread(consume)
    stored = await _stored(live, app_id, run.run_id)
    assert seen == stored[1:]  # after=1: from seq 2, each once
    assert len([r for r in relay.requests if b"/stream" in r]) >= 2


async def test_create_is_retried_with_the_same_idempotency_key(live: Live):
    async with AsyncClient(live.base_url, live.token) as direct:
        app_id = await _app(direct)
    async with Relay(live.port).running() as relay:
        relay.lose_answers = 1  # the first request reaches the server; its answer is lost
        async with AsyncClient(relay.base_url, live.token, retry=FAST) as rw:
            run = await rw.create_run(app_id, "once", engine="scripted", script=[])
            assert run.status in ("queued", "running", "completed")
    creates = [r for r in relay.requests if r.startswith(b"POST ") and b"/runs HTTP" in r]
    keys = [re.search(rb"(?i)idempotency-key: ([^\r]+)\r\n", r) for r in creates]
    assert len(creates) == 2 and all(keys)
    assert keys[0].group(1) == keys[1].group(1)  # type: ignore[union-attr]
    async with AsyncClient(live.base_url, live.token) as direct:
        runs = await direct.list_runs(app_id)
    assert [r.run_id for r in runs] == [run.run_id]  # the server made one run of the two tries


async def test_unreachable_server_is_a_transport_error_after_retries():
    port = free_port()  # nothing listens there
    async with AsyncClient(f"http://127.0.0.1:{port}", "t", retry=FAST) as rw:
        with pytest.raises(TransportError) as failed:
            await rw.list_runs(uuid.uuid4())
    assert isinstance(failed.value.__cause__, httpx.ConnectError)
