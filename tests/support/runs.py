"""Helpers for run tests: create runs over HTTP and read their SSE streams."""

from __future__ import annotations

import asyncio
import json
from typing import Any


def runs_url(app_id: str, suffix: str = "") -> str:
    return f"/admin/apps/{app_id}/coding-agent/runs{suffix}"


def parse_sse(body: str) -> list[dict[str, Any]]:
    """Parse SSE text into messages ``{"id": int | None, "data": obj, "raw": str}``;
    comments are skipped."""
    messages = []
    for block in body.split("\n\n"):
        ident = None
        data = None
        for line in block.split("\n"):
            if line.startswith("id: "):
                ident = int(line[4:])
            elif line.startswith("data: "):
                data = line[6:]
        if data is not None:
            messages.append({"id": ident, "data": json.loads(data), "raw": data})
    return messages


async def read_stream(
    client: Any,
    app_id: str,
    run_id: str,
    headers: dict[str, str],
    *,
    after: int | None = None,
    within: float = 20.0,
) -> tuple[str, list[dict[str, Any]]]:
    """GET the run's stream until the server ends it; returns (raw text, events)."""
    hdrs = dict(headers)
    if after is not None:
        hdrs["Last-Event-ID"] = str(after)
    response = await asyncio.wait_for(
        client.get(runs_url(app_id, f"/{run_id}/stream"), headers=hdrs), within
    )
    assert response.status_code == 200, await response.get_data(as_text=True)
    text = await asyncio.wait_for(response.get_data(as_text=True), within)
    return text, parse_sse(text)


async def create_run(
    client: Any, app_id: str, headers: dict[str, str], **body: Any
) -> dict[str, Any]:
    response = await client.post(runs_url(app_id), json=body, headers=headers)
    assert response.status_code == 200, await response.get_data(as_text=True)
    return await response.get_json()


async def wait_status(
    client: Any,
    app_id: str,
    run_id: str,
    headers: dict[str, str],
    statuses: set[str],
    within: float = 20.0,
) -> dict[str, Any]:
    """Poll GET run until its status is one of ``statuses`` (tests only)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        response = await client.get(runs_url(app_id, f"/{run_id}"), headers=headers)
        run = await response.get_json()
        if run["status"] in statuses:
            return run
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"run stayed {run['status']}, wanted {statuses}")
        await asyncio.sleep(0.02)


class LiveStream:
    """An open SSE connection through the Quart test client, read incrementally.

    Use as ``async with LiveStream(client, url, headers) as s: await s.until(...)``;
    leaving the block disconnects like a browser closing the tab.
    """

    def __init__(self, client: Any, url: str, headers: dict[str, str]) -> None:
        self._cm = client.request(url, method="GET", headers=headers)
        self.text = ""
        self.ended = False

    async def __aenter__(self) -> LiveStream:
        self._conn = await self._cm.__aenter__()
        await self._conn.send_complete()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self._conn.disconnect()
        try:
            await asyncio.wait_for(self._cm.__aexit__(None, None, None), 5)
        except Exception:
            pass

    @property
    def events(self) -> list[dict[str, Any]]:
        return parse_sse(self.text)

    async def until(self, predicate: Any, within: float = 20.0) -> list[dict[str, Any]]:
        """Read until ``predicate(events)`` is true or the stream ends; returns the events."""
        deadline = asyncio.get_running_loop().time() + within
        while not predicate(self.events) and not self.ended:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise AssertionError(f"stream condition not met; got {self.events!r}")
            chunk = await asyncio.wait_for(self._conn.receive(), remaining)
            if not chunk:
                self.ended = True
            self.text += chunk.decode()
        return self.events


def types(events: list[dict[str, Any]]) -> list[str]:
    return [e["data"]["event"] for e in events]


async def decide(
    client: Any,
    app_id: str,
    run_id: str,
    headers: dict[str, str],
    after: int,
    *,
    within: float = 20.0,
    **approval: Any,
) -> list[dict[str, Any]]:
    """Resume a run paused on an approval with ``approval`` (``request_id``, ``decision``,
    ``arguments``, ``message``); returns the resumed run's events after seq ``after``."""
    response = await client.post(
        runs_url(app_id, f"/{run_id}/resume"), json={"approval": approval}, headers=headers
    )
    assert response.status_code == 200, await response.get_data(as_text=True)
    _, events = await read_stream(client, app_id, run_id, headers, after=after, within=within)
    return events


async def wait_removed(path: Any, within: float = 30.0) -> None:
    """Wait until ``path`` no longer exists (a run's workspace is removed just after its
    terminal status and event, so a client can see the end first)."""
    deadline = asyncio.get_running_loop().time() + within
    while await asyncio.to_thread(path.exists):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{path} still exists after {within} s")
        await asyncio.sleep(0.05)
