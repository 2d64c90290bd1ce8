"""Run queries (issue 12 item 4): filters, signed cursors in both directions, the tenant-wide
list, and 422 for unknown parameters and altered cursors, through the HTTP API."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from tests.support.api import create_app_via_api
from tests.support.runs import runs_url

TENANT_RUNS = "/admin/coding-agent/runs"
STATUSES = ("completed", "failed", "cancelled", "paused")  # never picked up by a node
ENGINES = ("native", "opencode")
T0 = datetime(2026, 1, 1, tzinfo=UTC)


async def _seed(
    db: Any, tenant_id: uuid.UUID, app_id: str, count: int, *, start: datetime = T0
) -> list[dict[str, Any]]:
    """``count`` runs of the app, straight into the table (terminal or paused, so no node
    executes them). Every fifth shares its ``created_at`` with the four before it, so
    pages must break ties by id. Returns ``{id, status, engine, created_at}`` each."""
    runs = []
    for i in range(count):
        runs.append({
            "id": uuid.uuid4(),
            "status": STATUSES[i % len(STATUSES)],
            "engine": ENGINES[(i // 3) % len(ENGINES)],
            "created_at": start + timedelta(seconds=i // 5),
        })  # fmt: skip
    values = ", ".join(
        f"('{r['id']}', '{tenant_id}', '{app_id}', '{r['engine']}', '{r['status']}', "
        f"'{r['created_at'].isoformat()}')"
        for r in runs
    )
    await db.execute_raw(
        "INSERT INTO agent_runs (id, tenant_id, published_app_id, execution_engine, status, "
        f"created_at) VALUES {values};"
    )
    return runs


def _wanted(run: dict[str, Any]) -> bool:
    return run["status"] in ("completed", "paused") and run["engine"] == "native"


def _newest_first(runs: list[dict[str, Any]]) -> list[str]:
    return [
        str(r["id"]) for r in sorted(runs, key=lambda r: (r["created_at"], r["id"]), reverse=True)
    ]


async def _get(client: Any, url: str, headers: dict[str, str]) -> tuple[list[dict[str, Any]], Any]:
    response = await client.get(url, headers=headers)
    assert response.status_code == 200, await response.get_data(as_text=True)
    return await response.get_json(), response.headers


async def test_paging_250_runs_with_filters_in_both_directions(client, owner, db):
    app, _ = await create_app_via_api(client, owner.headers)
    seeded = await _seed(db, owner.tenant_id, app["id"], 250)
    expected = _newest_first([r for r in seeded if _wanted(r)])
    assert len(expected) > 50
    base = runs_url(app["id"], "?status=completed&status=paused&engine=native&limit=17")

    # Forwards (older runs), with runs created while paging: none shows up or shifts a page.
    seen: list[str] = []
    fresh: list[dict[str, Any]] = []
    pages = 0
    items, headers = await _get(client, base, owner.headers)
    assert "Runwright-Prev-Cursor" not in headers  # the first page
    while True:
        pages += 1
        assert all(i["status"] in ("completed", "paused") for i in items)
        assert all(i["execution_engine"] == "native" for i in items)
        seen += [i["run_id"] for i in items]
        if pages == 2:
            fresh = await _seed(db, owner.tenant_id, app["id"], 20, start=datetime.now(UTC))
        cursor = headers.get("Runwright-Next-Cursor")
        if cursor is None:
            assert 'rel="next"' not in headers.get("Link", "")
            break
        assert f"cursor={quote(cursor, safe='')}" in headers["Link"]
        items, headers = await _get(client, f"{base}&cursor={cursor}", owner.headers)
    assert seen == expected  # no gap, no duplicate, newest first
    assert pages == -(-len(expected) // 17)

    # Backwards (newer runs) from the last page: the same runs, then the new ones.
    cursor = headers["Runwright-Prev-Cursor"]
    back = [i["run_id"] for i in items]
    while cursor is not None:
        items, headers = await _get(client, f"{base}&cursor={cursor}", owner.headers)
        assert len(items) <= 17 and headers.get("Runwright-Next-Cursor")
        back = [i["run_id"] for i in items] + back
        cursor = headers.get("Runwright-Prev-Cursor")
    new = _newest_first([r for r in fresh if _wanted(r)])
    assert new
    assert back == new + expected
    # Commas work as well as repeated parameters.
    items, _ = await _get(
        client, runs_url(app["id"], "?status=completed,paused&engine=native&limit=100"),
        owner.headers,
    )  # fmt: skip
    assert [i["run_id"] for i in items] == (new + expected)[:100]


async def test_created_before_and_after(client, owner, db):
    app, _ = await create_app_via_api(client, owner.headers)
    seeded = await _seed(db, owner.tenant_id, app["id"], 50)
    after, before = T0 + timedelta(seconds=2), T0 + timedelta(seconds=6)
    window = [r for r in seeded if after < r["created_at"] < before]
    url = runs_url(
        app["id"],
        f"?created_after={quote(after.isoformat())}&created_before={quote(before.isoformat())}",
    )
    items, headers = await _get(client, url, owner.headers)
    assert [i["run_id"] for i in items] == _newest_first(window)
    assert len(items) == 15  # seconds 3, 4, 5: five runs each
    # A naive datetime is UTC; "Z" works too.
    naive = runs_url(app["id"], "?created_before=2026-01-01T00:00:01&limit=100")
    items, _ = await _get(client, naive, owner.headers)
    assert len(items) == 5
    zulu = runs_url(app["id"], "?created_after=2026-01-01T00:00:07Z&limit=100")
    items, _ = await _get(client, zulu, owner.headers)
    assert len(items) == 10


async def test_unknown_parameters_and_bad_values_are_422(client, owner, app_and_draft):
    app, _ = app_and_draft
    for query, loc, kind in [
        ("?statuss=completed", ["query", "statuss"], "extra_forbidden"),
        ("?limit=10&foo=1", ["query", "foo"], "extra_forbidden"),
        ("?status=done", ["query", "status", 0], "literal_error"),
        ("?engine=langgraph", ["query", "engine", 0], "literal_error"),
        ("?created_before=yesterday", ["query", "created_before"], "datetime_from_date_parsing"),
        ("?created_after=-375", ["query", "created_after"], "value_error"),
        ("?limit=0", ["query", "limit"], "greater_than_equal"),
        ("?status=", ["query", "status"], "value_error"),  # no value would list everything
        ("?engine=,", ["query", "engine"], "value_error"),
        # in range as written, out of range in UTC: a 422, not a 500 at the driver
        ("?created_after=0001-01-01T00:00:00%2B14:00", ["query", "created_after"], "value_error"),
        ("?created_before=9999-12-31T23:59:59-14:00", ["query", "created_before"], "value_error"),
    ]:
        response = await client.get(runs_url(app["id"], query), headers=owner.headers)
        assert response.status_code == 422, query
        detail = (await response.get_json())["detail"]
        assert detail[0]["loc"] == loc, query
        assert detail[0]["type"] == kind, query
    # The contract's parameter keeps working.
    items, _ = await _get(client, runs_url(app["id"], "?limit=10"), owner.headers)
    assert items == []


def _flip(text: str, at: int) -> str:
    return text[:at] + ("A" if text[at] != "A" else "B") + text[at + 1 :]


async def test_altered_or_foreign_cursor_is_422(client, owner, seed, db):
    app, _ = await create_app_via_api(client, owner.headers)
    other_app, _ = await create_app_via_api(client, owner.headers)
    await _seed(db, owner.tenant_id, app["id"], 5)
    _, headers = await _get(client, runs_url(app["id"], "?limit=2"), owner.headers)
    cursor = headers["Runwright-Next-Cursor"]
    payload, mac = cursor.split(".")
    decoded = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode()
    assert "older" in decoded  # readable, but not editable:
    edited = base64.urlsafe_b64encode(decoded.replace("older", "newer").encode()).decode()
    cases = {
        "altered payload": f"{edited.rstrip('=')}.{mac}",
        "altered mac": f"{payload}.{_flip(mac, 3)}",
        "not a cursor": "hello",
        "bad base64": "!!!.???",
    }
    for name, bad in cases.items():
        response = await client.get(
            runs_url(app["id"], f"?cursor={quote(bad)}"), headers=owner.headers
        )
        assert response.status_code == 422, name
        item = (await response.get_json())["detail"][0]
        assert item["loc"] == ["query", "cursor"] and item["type"] == "cursor_invalid", name
        assert item["msg"], name
    # A genuine cursor of another list (another app, the tenant list) is refused too.
    for url in (runs_url(other_app["id"], f"?cursor={cursor}"), f"{TENANT_RUNS}?cursor={cursor}"):
        response = await client.get(url, headers=owner.headers)
        assert response.status_code == 422, url
        assert (await response.get_json())["detail"][0]["msg"] == "Cursor belongs to another list"
    # The untouched cursor works.
    items, _ = await _get(client, runs_url(app["id"], f"?limit=2&cursor={cursor}"), owner.headers)
    assert len(items) == 2


async def test_tenant_wide_list_is_scoped_to_the_tenant(client, owner, seed, db):
    first, _ = await create_app_via_api(client, owner.headers)
    second, _ = await create_app_via_api(client, owner.headers)
    mine = await _seed(db, owner.tenant_id, first["id"], 7)
    mine += await _seed(db, owner.tenant_id, second["id"], 6, start=T0 + timedelta(minutes=1))
    stranger = await seed.tenant_admin()
    theirs_app, _ = await create_app_via_api(client, stranger.headers)
    theirs = await _seed(db, stranger.tenant_id, theirs_app["id"], 9)

    # Paged across apps, only this tenant's runs.
    seen: list[str] = []
    url = f"{TENANT_RUNS}?limit=4"
    while url:
        items, headers = await _get(client, url, owner.headers)
        seen += [i["run_id"] for i in items]
        cursor = headers.get("Runwright-Next-Cursor")
        url = f"{TENANT_RUNS}?limit=4&cursor={cursor}" if cursor else ""
    assert seen == _newest_first(mine)
    items, _ = await _get(client, f"{TENANT_RUNS}?limit=100", stranger.headers)
    assert [i["run_id"] for i in items] == _newest_first(theirs)

    # Filters; another tenant's app lists nothing; its cursor is refused.
    items, _ = await _get(
        client, f"{TENANT_RUNS}?app_id={second['id']}&status=failed&limit=100", owner.headers
    )
    assert {i["published_app_id"] for i in items} == {second["id"]}
    assert [i["run_id"] for i in items] == _newest_first(
        [r for r in mine[7:] if r["status"] == "failed"]
    )
    items, _ = await _get(client, f"{TENANT_RUNS}?app_id={theirs_app['id']}", owner.headers)
    assert items == []
    _, headers = await _get(client, f"{TENANT_RUNS}?limit=2", stranger.headers)
    response = await client.get(
        f"{TENANT_RUNS}?cursor={headers['Runwright-Next-Cursor']}", headers=owner.headers
    )
    assert response.status_code == 422

    # The contract 9 chain: a member without the admin role, no token.
    member = await seed.member(owner.tenant_id, role="member")
    assert (await client.get(TENANT_RUNS, headers=member.headers)).status_code == 403
    assert (await client.get(TENANT_RUNS)).status_code == 401
    response = await client.get(f"{TENANT_RUNS}?bogus=1", headers=owner.headers)
    assert response.status_code == 422


async def test_session_filter_pages_one_sessions_runs(client, owner, seed, db):
    app, _ = await create_app_via_api(client, owner.headers)
    made = await client.post(
        f"/admin/apps/{app['id']}/coding-agent/sessions", json={}, headers=owner.headers
    )
    session_id = (await made.get_json())["session_id"]
    runs = await _seed(db, owner.tenant_id, app["id"], 30)
    in_session = runs[::3]
    for seq, run in enumerate(in_session, start=1):  # the session's runs, in its order
        await db.execute_raw(
            f"UPDATE agent_runs SET session_id = '{session_id}', session_seq = {seq} "
            f"WHERE id = '{run['id']}';"
        )
    seen: list[str] = []
    url = runs_url(app["id"], f"?session_id={session_id}&limit=4")
    while url:
        items, headers = await _get(client, url, owner.headers)
        assert all(i["session_id"] == session_id for i in items)
        seen += [i["run_id"] for i in items]
        cursor = headers.get("Runwright-Next-Cursor")
        url = (
            runs_url(app["id"], f"?session_id={session_id}&limit=4&cursor={cursor}")
            if cursor
            else ""
        )
    assert seen == _newest_first(in_session)
    items, _ = await _get(client, f"{TENANT_RUNS}?session_id={session_id}&limit=100", owner.headers)
    assert [i["run_id"] for i in items] == _newest_first(in_session)
    # Another tenant naming this session sees nothing of it.
    stranger = await seed.tenant_admin()
    items, _ = await _get(client, f"{TENANT_RUNS}?session_id={session_id}", stranger.headers)
    assert items == []
    response = await client.get(runs_url(app["id"], "?session_id=nope"), headers=owner.headers)
    assert response.status_code == 422
