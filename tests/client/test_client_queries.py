"""The Python client's sessions and run queries against a real server on loopback:
sessions (create, list, get with runs, a busy session's 409), run list filters, cursor
pages in both directions, iteration over every page, and the tenant-wide list."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from runwright.client import AsyncClient, Client, Conflict, Run, Session, ValidationFailed
from tests.client.conftest import Live

DONE: list[dict] = [{"delta": "ok"}]


async def _app(rw: AsyncClient) -> str:
    app = await rw.create_app("Queries", f"q-{uuid.uuid4().hex[:10]}")
    return str(app.id)


async def _finished(rw: AsyncClient, app_id: str, run: Run) -> Run:
    """The run after its stream's terminal event."""
    async for _ in rw.stream(app_id, run.run_id):
        pass
    return await rw.get_run(app_id, run.run_id)


async def test_sessions_create_list_get_and_a_busy_session_refuses(live: Live):
    async with AsyncClient(live.base_url, live.token) as rw:
        app_id = await _app(rw)
        session = await rw.create_session(app_id, title="Heading work")
        assert session.title == "Heading work" and session.multitask_strategy == "reject"
        assert session.run_count == 0 and session.created_by == live.owner.user_id

        first = await rw.create_run(app_id, "one", engine="scripted", script=DONE,
                                    session_id=session.session_id)  # fmt: skip
        assert first.session_id == session.session_id
        await _finished(rw, app_id, first)
        hanging = await rw.create_run(app_id, "two", engine="scripted", script=[{"hang": True}],
                                      session_id=session.session_id)  # fmt: skip
        with pytest.raises(Conflict) as busy:
            await rw.create_run(app_id, "three", engine="scripted", script=DONE,
                                session_id=session.session_id)  # fmt: skip
        assert busy.value.code == "SESSION_BUSY"
        assert busy.value.detail["active_run_id"] == str(hanging.run_id)
        # The create's own strategy wins over the session's: this one waits its turn.
        queued = await rw.create_run(app_id, "four", engine="scripted", script=DONE,
                                     session_id=session.session_id,
                                     multitask_strategy="enqueue")  # fmt: skip
        await rw.cancel_run(app_id, hanging.run_id)
        assert (await _finished(rw, app_id, queued)).status == "completed"

        other = await rw.create_session(app_id, multitask_strategy="enqueue")
        listed = await rw.list_sessions(app_id, limit=10)
        assert [s.session_id for s in listed] == [other.session_id, session.session_id]
        assert all(isinstance(s, Session) for s in listed)
        detail = await rw.get_session(app_id, session.session_id)
        assert detail.run_count == 3
        assert [r.run_id for r in detail.runs] == [first.run_id, hanging.run_id, queued.run_id]
        assert [r.status for r in detail.runs] == ["completed", "cancelled", "completed"]

        # Only the session's runs, by the list filter.
        alone = await rw.create_run(app_id, "alone", engine="scripted", script=DONE)
        in_session = await rw.list_runs(app_id, session_id=session.session_id)
        assert {r.run_id for r in in_session} == {first.run_id, hanging.run_id, queued.run_id}
        assert alone.run_id not in {r.run_id for r in in_session}


async def test_filters_and_cursor_pages_in_both_directions(live: Live):
    async with AsyncClient(live.base_url, live.token) as rw:
        app_id = await _app(rw)
        made = []
        for i in range(5):
            run = await rw.create_run(app_id, f"run {i}", engine="scripted", script=DONE)
            made.append(await _finished(rw, app_id, run))
        hanging = await rw.create_run(app_id, "hang", engine="scripted", script=[{"hang": True}])
        await rw.cancel_run(app_id, hanging.run_id)
        newest_first = [hanging.run_id] + [r.run_id for r in reversed(made)]

        assert [r.run_id for r in await rw.list_runs(app_id)] == newest_first
        completed = await rw.list_runs(app_id, status="completed")
        assert [r.run_id for r in completed] == newest_first[1:]
        either = await rw.list_runs(app_id, status=["cancelled", "completed"], limit=2)
        assert [r.run_id for r in either] == newest_first[:2]
        assert await rw.list_runs(app_id, engine="native") == []
        after = made[2].created_at
        later = await rw.list_runs(app_id, created_after=after, engine=["scripted"])
        assert [r.run_id for r in later] == newest_first[:3]
        naive_future = datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=1)
        assert len(await rw.list_runs(app_id, created_before=naive_future)) == 6

        # Forwards with next_cursor, then back with prev_cursor: the same pages.
        first = await rw.runs_page(app_id, limit=4)
        assert [r.run_id for r in first.runs] == newest_first[:4]
        assert first.prev_cursor is None and first.next_cursor is not None
        second = await rw.runs_page(app_id, limit=4, cursor=first.next_cursor)
        assert [r.run_id for r in second.runs] == newest_first[4:]
        assert second.next_cursor is None and second.prev_cursor is not None
        back = await rw.runs_page(app_id, limit=4, cursor=second.prev_cursor)
        assert [r.run_id for r in back.runs] == newest_first[:4]

        every = [r.run_id async for r in rw.iter_runs(app_id, page_size=2, status="completed")]
        assert every == newest_first[1:]

        with pytest.raises(ValidationFailed) as altered:
            await rw.runs_page(app_id, cursor=first.next_cursor[:-2] + "AA")
        assert altered.value.detail[0]["loc"] == ["query", "cursor"]
        with pytest.raises(TypeError):
            await rw.list_runs(app_id, statuses="completed")  # type: ignore[call-arg]


async def test_tenant_wide_pages_and_the_sync_client(live: Live):
    async with AsyncClient(live.base_url, live.token) as rw:
        apps = [await _app(rw), await _app(rw)]
        runs = {}
        for app_id in apps:
            run = await rw.create_run(app_id, "go", engine="scripted", script=DONE)
            runs[app_id] = (await _finished(rw, app_id, run)).run_id

    def scenario() -> tuple[list[uuid.UUID], list[uuid.UUID], list[uuid.UUID]]:
        with Client(live.base_url, live.token, tenant_id=live.owner.tenant_id) as rw:
            every = [r.run_id for r in rw.iter_tenant_runs(page_size=1)]
            one_app = rw.tenant_runs_page(app_id=apps[0], status="completed")
            synced = [r.run_id for r in rw.iter_runs(apps[1], page_size=1)]
            return every, [r.run_id for r in one_app.runs], synced

    every, one_app, synced = await asyncio.to_thread(scenario)
    assert every == [runs[apps[1]], runs[apps[0]]]
    assert one_app == [runs[apps[0]]]
    assert synced == [runs[apps[1]]]
