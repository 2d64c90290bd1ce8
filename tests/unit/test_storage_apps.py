"""Draft revisions: chaining and optimistic concurrency on a real database."""

from __future__ import annotations

import asyncio

import pytest

from storage import apps
from storage.apps import RevisionConflict


async def _new_app(db, seed):
    tenant = await seed.tenant()
    return await apps.create_app(
        db,
        tenant_id=tenant,
        name="a",
        slug=f"s-{tenant.hex[:8]}",
        template_key="chat-classic",
        files={"src/main.tsx": "x"},
        created_by=None,
    )


async def test_concurrent_writers_on_the_same_base_one_wins(db, seed):
    app, first = await _new_app(db, seed)
    results = await asyncio.gather(
        *(
            apps.create_draft_revision(
                db,
                app_id=app.id,
                tenant_id=app.tenant_id,
                files={"src/main.tsx": f"v{i}"},
                base_revision_id=first.id,
            )
            for i in range(4)
        ),
        return_exceptions=True,
    )
    winners = [r for r in results if isinstance(r, apps.Revision)]
    losers = [r for r in results if isinstance(r, RevisionConflict)]
    assert len(winners) == 1 and len(losers) == 3
    assert all(loser.latest is not None and loser.latest.id == winners[0].id for loser in losers)
    current = await apps.current_draft(db, app_id=app.id, tenant_id=app.tenant_id)
    assert current is not None and current.id == winners[0].id
    assert current.build_seq == 2 and current.source_revision_id == first.id


async def test_revision_for_another_tenant_is_app_not_found(db, seed):
    app, _ = await _new_app(db, seed)
    other_tenant = await seed.tenant()
    with pytest.raises(apps.AppNotFound):
        await apps.create_draft_revision(
            db, app_id=app.id, tenant_id=other_tenant, files={"src/main.tsx": "x"}
        )
    assert await apps.get_app(db, app_id=app.id, tenant_id=other_tenant) is None
