"""The Python client's approvals, agent settings, usage and webhooks against a real server
on loopback: the native engine talks to the scripted OpenAI server, so a marked tool call
really pauses the run and the model's reported usage is really summed."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from runwright.client import (
    AsyncClient,
    Client,
    Conflict,
    PendingApproval,
    RetryPolicy,
    Run,
    ValidationFailed,
)
from storage import models as models_store
from storage.models import BindingSpec
from tests.client.conftest import Live
from tests.support.fixtures_openai import scripted_openai  # noqa: F401
from tests.support.lossy_proxy import lossy_proxy
from tests.support.patches import heading_patch
from tests.support.scripted_openai import ScriptedToolCall, text_reply, tool_call_reply
from tests.support.webhook_receiver import expected_signature, signature_parts, webhook_receiver

GOOD_PATCH = heading_patch("Runwright Chat")
OTHER_PATCH = heading_patch("Reviewed Chat")


def _call(name: str, **arguments: object):
    return tool_call_reply(ScriptedToolCall(name, arguments), usage=USAGE)


USAGE = {"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110}


async def _native_app(live: Live, rw: AsyncClient, base_url: str) -> str:
    await models_store.create_model(
        live.services.db, tenant_id=live.owner.tenant_id, name=f"m-{uuid.uuid4().hex[:6]}",
        is_default=True,
        bindings=[BindingSpec(provider="openai", provider_model_id="m", base_url=base_url)],
    )  # fmt: skip
    app = await rw.create_app("Approvals", f"a-{uuid.uuid4().hex[:10]}")
    return str(app.id)


async def _paused(rw: AsyncClient, app_id: str, run: Run) -> tuple[Run, int]:
    """The run once its stream ended at the pause, and the seq of that end."""
    events = [e async for e in rw.stream(app_id, run.run_id)]
    assert [e.event for e in events][-2:] == ["approval.requested", "run.completed"]
    paused = await rw.get_run(app_id, run.run_id)
    assert paused.status == "paused"
    return paused, events[-1].seq


async def _finished(rw: AsyncClient, app_id: str, run_id: uuid.UUID, after: int) -> Run:
    """The run after the terminal event that follows seq ``after`` (the pause's end)."""
    async for _ in rw.stream(app_id, run_id, after=after):
        pass
    return await rw.get_run(app_id, run_id)


async def _draft(rw: AsyncClient, app_id: str) -> str:
    state = await rw.builder_state(app_id)
    assert state.current_draft_revision is not None
    return state.current_draft_revision.files["src/App.tsx"]


async def test_a_decision_whose_answer_was_lost_to_a_503_is_retried_and_returns_the_run(
    live: Live,
    scripted_openai,  # noqa: F811
):
    """The server took the decision but the client got 503 (the run answered too late):
    the client retries, and the repeat of the applied decision answers with the run (it
    raised Conflict before). The edit is applied once."""
    async with AsyncClient(live.base_url, live.token) as rw:
        app_id = await _native_app(live, rw, scripted_openai.base_url)
        scripted_openai.push(
            _call("coding_agent_apply_patch", patch=GOOD_PATCH), text_reply("Done.", usage=USAGE)
        )
        run = await rw.create_run(app_id, "Rename the heading", approval_policy="patches")
        paused, pause_seq = await _paused(rw, app_id, run)
        assert paused.pending_approval is not None
        request_id = paused.pending_approval.request_id

        def first_resume(method: str, path: str, n: int) -> bool:
            return method == "POST" and path.endswith("/resume") and n == 0

        async with (
            lossy_proxy(live.base_url, first_resume) as proxy,
            AsyncClient(proxy.base_url, live.token,
                        retry=RetryPolicy(attempts=3, backoff=0.05)) as lossy,
        ):  # fmt: skip
            resumed = await lossy.approve(
                app_id, run.run_id, request_id, arguments={"patch": OTHER_PATCH}
            )
        assert resumed.run_id == run.run_id
        assert resumed.status in ("queued", "running", "completed")
        resume_path = f"/admin/apps/{app_id}/coding-agent/runs/{run.run_id}/resume"
        assert proxy.log == [("POST", resume_path, 503), ("POST", resume_path, 200)]

        assert (await _finished(rw, app_id, run.run_id, pause_seq)).status == "completed"
        assert "<h1>Reviewed Chat</h1>" in await _draft(rw, app_id)
        assert len(scripted_openai.bodies) == 2  # decided once, the model asked once more
        # Another decision on the request that was decided stays a conflict.
        with pytest.raises(Conflict):
            await rw.reject(app_id, run.run_id, request_id, message="too late")


async def test_approve_with_edits_reject_and_the_apps_default_policy(
    live: Live,
    scripted_openai,  # noqa: F811
):
    async with AsyncClient(live.base_url, live.token) as rw:
        app_id = await _native_app(live, rw, scripted_openai.base_url)
        assert (await rw.get_agent_settings(app_id)).approval_policy == "none"
        updated = await rw.set_agent_settings(app_id, approval_policy="patches")
        assert updated.approval_policy == "patches"

        scripted_openai.push(
            _call("coding_agent_apply_patch", patch=GOOD_PATCH), text_reply("Done.", usage=USAGE)
        )
        run = await rw.create_run(app_id, "Rename the heading")
        assert run.approval_policy == "patches"  # the app's default
        paused, pause_seq = await _paused(rw, app_id, run)
        pending = paused.pending_approval
        assert isinstance(pending, PendingApproval)
        assert pending.tool == "coding_agent_apply_patch" and pending.editable
        assert pending.arguments == {"patch": GOOD_PATCH}

        with pytest.raises(Conflict) as wrong:
            await rw.approve(app_id, run.run_id, "not-the-request")
        assert wrong.value.code == "APPROVAL_NOT_PENDING"
        assert wrong.value.detail["pending_request_id"] == pending.request_id
        with pytest.raises(ValidationFailed) as too_large:
            await rw.approve(app_id, run.run_id, pending.request_id,
                             arguments={"patch": "+" * 240_001})  # fmt: skip
        assert too_large.value.code == "PATCH_TOO_LARGE"
        assert too_large.value.detail["field"] == "approval.arguments.patch"

        resumed = await rw.approve(app_id, run.run_id, pending.request_id,
                                   arguments={"patch": OTHER_PATCH})  # fmt: skip
        assert resumed.status in ("queued", "running", "completed")
        assert (await _finished(rw, app_id, run.run_id, pause_seq)).status == "completed"
        assert "<h1>Reviewed Chat</h1>" in await _draft(rw, app_id)

        # Reject: nothing runs; the model reads the message and goes on.
        scripted_openai.push(
            _call("coding_agent_apply_patch", patch=GOOD_PATCH),
            text_reply("Kept it.", usage=USAGE),
        )
        second = await rw.create_run(app_id, "Rename it back")
        paused, pause_seq = await _paused(rw, app_id, second)
        assert paused.pending_approval is not None
        request_id = paused.pending_approval.request_id
        await rw.reject(app_id, second.run_id, request_id, message="Marketing likes it")
        assert (await _finished(rw, app_id, second.run_id, pause_seq)).status == "completed"
        told = scripted_openai.bodies[-1]["messages"][-1]
        assert told["role"] == "tool" and "Marketing likes it" in told["content"]
        assert "<h1>Reviewed Chat</h1>" in await _draft(rw, app_id)

        usage = await rw.usage()
        assert usage.tenant_id == live.owner.tenant_id
        assert usage.totals.model_calls == 4 and usage.totals.total_tokens == 440
        assert usage.totals.runs == 2 and usage.totals.tool_calls == 1
        assert [a.app_id for a in usage.by_app] == [uuid.UUID(app_id)]
        assert usage.end - usage.start == timedelta(days=30)
        before = datetime.now(UTC) - timedelta(days=60)
        empty = await rw.usage(start=before, end=before + timedelta(days=1))
        assert empty.totals.model_calls == 0 and empty.totals.total_tokens is None
        with pytest.raises(ValidationFailed) as backwards:
            await rw.usage(start=before, end=before - timedelta(days=1))
        assert backwards.value.detail[0]["loc"] == ["query", "from"]


async def test_webhook_secret_and_deliveries_through_the_sync_client(live: Live):
    async with webhook_receiver() as receiver:

        def scenario() -> tuple[str, list, object, object]:
            with Client(live.base_url, live.token) as rw:
                assert rw.webhook_secret_info().configured is False
                created = rw.rotate_webhook_secret()
                info = rw.webhook_secret_info()
                assert info.configured and info.version == created.version == 1
                app = rw.create_app("Hooks", f"h-{uuid.uuid4().hex[:10]}")
                run = rw.create_run(app.id, "go", engine="scripted", script=[{"delta": "x"}],
                                    webhook=receiver.url())  # fmt: skip
                list(rw.stream(app.id, run.run_id))
                deadline = time.monotonic() + 60
                while True:
                    deliveries = rw.webhook_deliveries(app.id, run.run_id)
                    if [d.state for d in deliveries] == ["delivered"]:
                        break
                    assert time.monotonic() < deadline, deliveries
                    time.sleep(0.1)
                return created.secret, deliveries, run, rw.get_run(app.id, run.run_id)

        secret, deliveries, run, final = await asyncio.to_thread(scenario)
        [request] = await receiver.wait_for(1)
    [delivery] = deliveries
    assert delivery.run_id == run.run_id and delivery.event == "run.completed"
    assert delivery.attempts == 1 and delivery.last_status_code == 200
    assert str(delivery.delivery_id) == request.headers["runwright-delivery"]
    t, v1 = signature_parts(request.headers["runwright-signature"])
    assert v1 == [expected_signature(secret, t, request.body)]
    assert Run.model_validate(request.json()) == final
