"""A run's revisions are written under its claim token (docs/architecture.md "Fencing"):
once another node took the run (its token moved on), neither auto-apply nor the agent's
checkpoint tools of the old owner leave a revision or move the draft.

A takeover between an owner's last fenced write and its auto-apply cannot be timed from
outside (tests/e2e/test_coordination.py covers the stalled owner as a whole), so these
drive the owner's side, :class:`runtime.checkpoints.Checkpoints`, against real Postgres and
a real run workspace, and move the token the way a takeover does.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import pytest

from runtime.tools import ToolContext, ToolError
from runtime.tools.context import WorkspaceOrigin
from runtime.workspace import Workspace
from storage.runs import RunTakenOver
from tests.support.api import create_app_via_api
from tests.support.runs import create_run, wait_status

HEADING = "<h1>Fenced Chat</h1>"


@pytest.fixture
def settings(make_settings):
    return make_settings(scripted_engine_enabled=True)


@pytest.fixture
async def pg(database_url: str) -> Any:
    connection = await asyncpg.connect(database_url)
    yield connection
    await connection.close()


async def _run_with_edit(client, owner, services) -> tuple[dict[str, Any], dict[str, Any], Any]:
    """An app, a (finished) run of it with its claim token, and that run's workspace made
    from its base revision with the heading edited, as an owner's would be."""
    app, draft = await create_app_via_api(client, owner.headers)
    run = await create_run(client, app["id"], owner.headers, input="x", engine="scripted",
                           script=[{"delta": "hi"}])  # fmt: skip
    await wait_status(client, app["id"], run["run_id"], owner.headers, {"completed"}, 60)
    row = await services.db.fetchrow("runs_get", uuid.UUID(run["run_id"]))
    root = await services.checkpoints.prepare(dict(row), fresh=True)
    workspace = Workspace(root)
    text = workspace.read_text("src/App.tsx").replace("<h1>Chat</h1>", HEADING)
    workspace.write_text("src/App.tsx", text)
    return app, draft, dict(row)


async def _take_over(pg, run_id: uuid.UUID) -> None:
    """What any take-over does to the token (runs_reclaim, runs_finish, ...)."""
    await pg.execute("UPDATE agent_runs SET claim_token = claim_token + 1 WHERE id = $1", run_id)


async def _revisions(pg, app_id: str) -> tuple[int, Any]:
    """The app's revision count and current draft."""
    count = await pg.fetchval(
        "SELECT count(*) FROM app_revisions WHERE published_app_id = $1", uuid.UUID(app_id)
    )
    draft = await pg.fetchval(
        "SELECT current_draft_revision_id FROM published_apps WHERE id = $1", uuid.UUID(app_id)
    )
    return count, draft


async def test_auto_apply_of_an_owner_whose_run_was_taken_over_writes_nothing(
    client, owner, services, pg
):
    app, draft, row = await _run_with_edit(client, owner, services)
    token = row["claim_token"]
    before = await _revisions(pg, app["id"])
    await _take_over(pg, row["id"])
    with pytest.raises(RunTakenOver):
        await services.checkpoints.auto_apply(row, token=token)
    assert await _revisions(pg, app["id"]) == before  # the revision rolled back
    # The new holder of the token applies the same workspace.
    applied = await services.checkpoints.auto_apply(row, token=token + 1)
    assert applied is not None
    count, current = await _revisions(pg, app["id"])
    assert (count, current) == (before[0] + 1, applied.revision_id)


async def test_a_checkpoint_tool_of_an_owner_whose_run_was_taken_over_writes_nothing(
    client, owner, services, pg
):
    app, draft, row = await _run_with_edit(client, owner, services)
    root = services.checkpoints.workspace_path(row["id"])

    def ctx(token: int) -> ToolContext:
        return ToolContext(
            run_id=row["id"], tenant_id=row["tenant_id"], app_id=row["published_app_id"],
            user_id=row["user_id"], workspace=Workspace(root), claim_token=token,
            origin=WorkspaceOrigin(row["base_revision_id"]),
        )  # fmt: skip

    token = row["claim_token"]
    before = await _revisions(pg, app["id"])
    await _take_over(pg, row["id"])
    for call in (
        lambda: services.checkpoints.create_checkpoint(ctx(token), None),
        lambda: services.checkpoints.restore_checkpoint(ctx(token), draft["id"]),
    ):
        with pytest.raises(ToolError) as refused:
            await call()
        assert refused.value.code == "RUN_TAKEN_OVER"
    assert await _revisions(pg, app["id"]) == before
    made = await services.checkpoints.create_checkpoint(ctx(token + 1), None)
    count, current = await _revisions(pg, app["id"])
    assert (count, str(current)) == (before[0] + 1, made["checkpoint_revision_id"])
