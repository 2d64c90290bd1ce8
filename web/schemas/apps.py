"""API models for published apps, revisions and the builder (contract sections 1 and 8)."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, Field, RootModel

from storage.apps import App, Revision
from web.schemas.common import UtcDatetime

SLUG_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"


class AppCreateRequest(BaseModel):
    """``POST /admin/apps``. Unknown fields (e.g. auth settings) are ignored."""

    name: str = Field(min_length=1, max_length=200, description="Display name.")
    slug: str = Field(
        pattern=SLUG_PATTERN,
        description="Globally unique: lowercase letters, digits and '-', 1-64 characters.",
    )
    template_key: str = Field(
        default="chat-classic",
        min_length=1,
        max_length=64,
        description="Starter template for revision 1.",
    )


class AppResponse(BaseModel):
    """A published app."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    name: str
    slug: str
    template_key: str
    status: str = Field(description="Publication status, 'draft' until published.")
    visibility: str
    current_draft_revision_id: uuid.UUID | None = Field(
        description="The revision the builder and runs start from."
    )
    current_published_revision_id: uuid.UUID | None
    created_by: uuid.UUID | None
    created_at: UtcDatetime
    updated_at: UtcDatetime

    @classmethod
    def of(cls, app: App) -> AppResponse:
        """Build from a storage row."""
        return cls.model_validate(app, from_attributes=True)


class AppListResponse(RootModel[list[AppResponse]]):
    """``GET /admin/apps``: the tenant's apps, newest first."""


class RevisionResponse(BaseModel):
    """``PublishedAppRevisionResponse``: an immutable snapshot (contract section 8)."""

    id: uuid.UUID
    published_app_id: uuid.UUID
    kind: Literal["draft", "published"]
    template_key: str
    entry_file: str = Field(description="The module Vite starts from, e.g. 'src/main.tsx'.")
    files: dict[str, str] = Field(description="Path -> file text.")
    build_status: Literal["queued", "running", "succeeded", "failed"]
    build_seq: int = Field(description="1 for the first revision, parent's + 1 after.")
    build_error: str | None
    build_started_at: UtcDatetime | None
    build_finished_at: UtcDatetime | None
    dist_storage_prefix: str | None
    dist_manifest: Any | None
    template_runtime: str = Field(description="Always 'vite_static'.")
    compiled_bundle: str | None
    bundle_hash: str = Field(description="sha256 hex of the files map as sorted-key JSON.")
    source_revision_id: uuid.UUID | None = Field(description="The parent revision.")
    created_by: uuid.UUID | None
    created_at: UtcDatetime

    @classmethod
    def of(cls, revision: Revision) -> RevisionResponse:
        """Build from a storage row."""
        return cls.model_validate(revision, from_attributes=True)


class BuilderStateResponse(BaseModel):
    """``GET /admin/apps/{app_id}/builder/state``."""

    app: AppResponse
    current_draft_revision: RevisionResponse | None = Field(
        description="The full current draft; null only if the app has none."
    )
    current_published_revision: RevisionResponse | None


class RevisionCreateRequest(BaseModel):
    """``POST /admin/apps/{app_id}/builder/revisions``: a full new file set."""

    files: dict[str, str] = Field(description="Path -> file text; replaces the whole project.")
    entry_file: str | None = Field(
        default=None, description="Defaults to the current draft's entry file."
    )
    base_revision_id: uuid.UUID | None = Field(
        default=None,
        description="Concurrency token: the draft the client edited. Stale -> 409 "
        "REVISION_CONFLICT. Omitted = no check.",
    )
