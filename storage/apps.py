"""Published apps and their draft revisions (contract section 8).

Revisions are immutable: a change is a new draft revision whose parent is the current draft,
and the app's draft pointer moves to it with a conditional UPDATE (docs/design.md section 8.11's
neighbour: no lost update when two writers race).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from storage.database import Database
from storage.errors import StorageError
from storage.records import from_record, maybe, returned

DEFAULT_ENTRY_FILE = "src/main.tsx"


class AppNotFound(StorageError):
    """No app with that id exists in that tenant."""


class RevisionConflict(StorageError):
    """The base revision is no longer the app's current draft (contract 1.2 step 3)."""

    def __init__(self, latest: Revision | None) -> None:
        super().__init__("Draft revision is stale")
        self.latest = latest


@dataclass(frozen=True, slots=True)
class App:
    """A published app row (``published_apps``)."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    name: str
    slug: str
    template_key: str
    status: str
    visibility: str
    current_draft_revision_id: uuid.UUID | None
    current_published_revision_id: uuid.UUID | None
    created_by: uuid.UUID | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Revision:
    """An immutable snapshot of an app's files (``app_revisions``); ``files`` maps path -> text."""

    id: uuid.UUID
    published_app_id: uuid.UUID
    kind: str
    template_key: str
    entry_file: str
    files: dict[str, str]
    build_status: str
    build_seq: int
    build_error: str | None
    build_started_at: datetime | None
    build_finished_at: datetime | None
    dist_storage_prefix: str | None
    dist_manifest: Any
    template_runtime: str
    compiled_bundle: str | None
    bundle_hash: str
    source_revision_id: uuid.UUID | None
    created_by: uuid.UUID | None
    created_at: datetime


def bundle_hash(files: dict[str, str]) -> str:
    """Hex sha256 of the files map serialised as JSON with sorted keys (contract 8)."""
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode("utf-8")).hexdigest()


async def create_app(
    db: Database,
    *,
    tenant_id: uuid.UUID,
    name: str,
    slug: str,
    template_key: str,
    files: dict[str, str],
    entry_file: str = DEFAULT_ENTRY_FILE,
    created_by: uuid.UUID | None,
) -> tuple[App, Revision]:
    """Create an app, its first draft revision (build_seq 1) and point the draft at it.

    All three writes happen in one transaction.

    Returns:
        ``(app, revision)`` with ``app.current_draft_revision_id == revision.id``.

    Raises:
        UniqueViolation: the slug is taken (slugs are unique across tenants).
        ForeignKeyViolation: the tenant or the creating user does not exist.
    """
    async with db.transaction() as tx:
        app_id = uuid.uuid4()
        await tx.fetchrow("apps_insert", app_id, tenant_id, name, slug, template_key, created_by)
        revision = await _insert_revision(
            tx,
            app_id=app_id,
            template_key=template_key,
            entry_file=entry_file,
            files=files,
            parent=None,
            created_by=created_by,
        )
        row = await tx.fetchrow("apps_move_draft_pointer", app_id, tenant_id, revision.id, None)
        return returned(App, row), revision


async def get_app(db: Database, *, app_id: uuid.UUID, tenant_id: uuid.UUID) -> App | None:
    """Return the app if it exists *in that tenant*, else ``None`` (contract 9 scoping)."""
    return maybe(App, await db.fetchrow("apps_get", app_id, tenant_id))


async def list_apps(db: Database, *, tenant_id: uuid.UUID) -> list[App]:
    """The tenant's apps, newest first."""
    return [from_record(App, r) for r in await db.fetch("apps_list", tenant_id)]


async def get_revision(
    db: Database, *, revision_id: uuid.UUID, app_id: uuid.UUID
) -> Revision | None:
    """Return the revision if it belongs to ``app_id``, else ``None``."""
    return maybe(Revision, await db.fetchrow("apps_revision_get", revision_id, app_id))


async def create_draft_revision(
    db: Database,
    *,
    app_id: uuid.UUID,
    tenant_id: uuid.UUID,
    files: dict[str, str],
    entry_file: str | None = None,
    base_revision_id: uuid.UUID | None = None,
    created_by: uuid.UUID | None = None,
) -> Revision:
    """Create a new draft revision on top of the current draft and move the pointer to it.

    ``build_seq`` is the parent's + 1 (1 when the app had no draft), ``source_revision_id``
    the parent, ``entry_file`` defaults to the parent's. Validate ``files`` before calling
    (runtime.project.validate_project); this function stores what it is given.

    Args:
        base_revision_id: the caller's idea of the current draft. ``None`` means "whatever
            is current now"; the pointer still only moves if nobody else moved it meanwhile.

    Raises:
        AppNotFound: no such app in that tenant.
        RevisionConflict: ``base_revision_id`` is not the current draft, or another writer
            moved the pointer first; ``latest`` is the current draft then.
    """
    try:
        async with db.transaction() as tx:
            app = await get_app(tx, app_id=app_id, tenant_id=tenant_id)
            if app is None:
                raise AppNotFound(str(app_id))
            current_id = app.current_draft_revision_id
            if base_revision_id is not None and base_revision_id != current_id:
                raise _Stale()
            parent = (
                None
                if current_id is None
                else await get_revision(tx, revision_id=current_id, app_id=app_id)
            )
            revision = await _insert_revision(
                tx,
                app_id=app_id,
                template_key=app.template_key,
                entry_file=entry_file or (parent.entry_file if parent else DEFAULT_ENTRY_FILE),
                files=files,
                parent=parent,
                created_by=created_by,
            )
            moved = await tx.fetchrow(
                "apps_move_draft_pointer", app_id, tenant_id, revision.id, current_id
            )
            if moved is None:
                # Another writer moved the pointer after our read: leaving the block with
                # an exception rolls our revision back, so nothing half-done remains.
                raise _Stale()
            return revision
    except _Stale:
        pass
    raise RevisionConflict(await current_draft(db, app_id=app_id, tenant_id=tenant_id))


async def current_draft(
    db: Database, *, app_id: uuid.UUID, tenant_id: uuid.UUID
) -> Revision | None:
    """The app's current draft revision, or ``None`` (no app, or no draft yet)."""
    app = await get_app(db, app_id=app_id, tenant_id=tenant_id)
    if app is None or app.current_draft_revision_id is None:
        return None
    return await get_revision(db, revision_id=app.current_draft_revision_id, app_id=app_id)


class _Stale(Exception):
    """Internal: the base is not (or no longer) the current draft."""


async def _insert_revision(
    db: Database,
    *,
    app_id: uuid.UUID,
    template_key: str,
    entry_file: str,
    files: dict[str, str],
    parent: Revision | None,
    created_by: uuid.UUID | None,
) -> Revision:
    row = await db.fetchrow(
        "apps_revision_insert",
        uuid.uuid4(),
        app_id,
        template_key,
        entry_file,
        files,
        1 if parent is None else parent.build_seq + 1,
        bundle_hash(files),
        None if parent is None else parent.id,
        created_by,
    )
    return returned(Revision, row)


async def get_approval_policy(
    db: Database, *, app_id: uuid.UUID, tenant_id: uuid.UUID
) -> str | None:
    """The app's default approval policy for new runs (migration 0013), None when the app
    is not in that tenant."""
    row = await db.fetchrow("apps_get_agent_settings", app_id, tenant_id)
    return None if row is None else str(row["approval_policy"])


async def set_approval_policy(
    db: Database, *, app_id: uuid.UUID, tenant_id: uuid.UUID, policy: str
) -> str | None:
    """Set the app's default approval policy (one of ``none``, ``commands``, ``patches``,
    ``all``; the column's CHECK enforces it); None when the app is not in that tenant.
    Runs already created keep theirs."""
    row = await db.fetchrow("apps_set_approval_policy", app_id, tenant_id, policy)
    return None if row is None else str(row["approval_policy"])
