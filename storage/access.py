"""The user branch of the contract 9 authorisation chain as one query (``access_user``).

The chain's checks and their order stay in :mod:`web.auth`; this only fetches, in one round
trip, everything they need: the user's platform-admin flag, the tenant the request acts in
and the caller's role there, the app (scoped to that tenant) and whether a run exists in it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from storage.apps import App
from storage.database import Database
from storage.records import from_record
from storage.runs import SURFACE


@dataclass(frozen=True, slots=True)
class UserAccess:
    """What the chain needs to know about a user token's request.

    Attributes:
        is_platform_admin: the user's flag (the token's claim is checked by the caller too).
        tenant_id: the tenant the request acts in; ``None`` when there is none (no
            membership, and not a platform admin who may act without one).
        org_role: the user's role there; ``None`` without a membership (platform admin).
        app: the app, if asked for and it exists in ``tenant_id``.
        run_found: the run asked for exists in that app and tenant.
    """

    is_platform_admin: bool
    tenant_id: uuid.UUID | None
    org_role: str | None
    app: App | None
    run_found: bool


async def user_access(
    db: Database,
    *,
    user_id: uuid.UUID,
    requested_tenant_id: uuid.UUID | None,
    admin_claim: bool,
    token_tenant_id: uuid.UUID | None,
    app_id: uuid.UUID | None = None,
    run_id: uuid.UUID | None = None,
) -> UserAccess | None:
    """Resolve a user's access in one query; ``None`` when the user does not exist.

    The tenant is the membership of ``requested_tenant_id`` (``X-Tenant-ID``) or, without
    one, the user's oldest membership (ties by tenant id); failing that, a platform admin
    (user flag *and* ``admin_claim``) acts in ``requested_tenant_id`` if that tenant exists,
    or in ``token_tenant_id`` when nothing was requested.
    """
    row = await db.fetchrow(
        "access_user", user_id, requested_tenant_id, admin_claim, token_tenant_id, app_id,
        run_id, SURFACE,
    )  # fmt: skip
    if row is None:
        return None
    return UserAccess(
        is_platform_admin=row["access_is_platform_admin"],
        tenant_id=row["access_tenant_id"],
        org_role=row["access_org_role"],
        app=None if row["id"] is None else from_record(App, row),
        run_found=row["access_run_found"],
    )
