"""Seed helpers, the equivalent of the reference's ``seed_admin_tenant_and_agent`` and
``admin_headers`` (contract section 10): a tenant, a user, a membership and the headers a
client sends (``Authorization: Bearer`` + ``X-Tenant-ID``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from storage import tenancy
from storage.database import Database
from storage.tenancy import OrgRole
from web.tokens import mint_token


def bearer_headers(
    secret: str,
    *,
    user_id: uuid.UUID,
    tenant_id: uuid.UUID | None,
    org_role: str | None = "owner",
    header_tenant: uuid.UUID | str | None = None,
    **claims: Any,
) -> dict[str, str]:
    """Headers with a freshly minted user token; ``X-Tenant-ID`` is ``header_tenant`` or
    ``tenant_id`` (omitted when both are None)."""
    token = mint_token(secret, subject=user_id, tenant_id=tenant_id, org_role=org_role, **claims)
    headers = {"Authorization": f"Bearer {token}"}
    chosen = header_tenant if header_tenant is not None else tenant_id
    if chosen is not None:
        headers["X-Tenant-ID"] = str(chosen)
    return headers


@dataclass
class Seeded:
    """A tenant with one user in it and that user's request headers."""

    tenant_id: uuid.UUID
    user_id: uuid.UUID
    role: str
    headers: dict[str, str] = field(repr=False)


class Seeder:
    """Creates tenants, users and memberships directly in the test database."""

    def __init__(self, db: Database, secret: str) -> None:
        self.db = db
        self.secret = secret

    async def tenant(self, name: str | None = None) -> uuid.UUID:
        """A new tenant; returns its id."""
        slug = f"t-{uuid.uuid4().hex[:10]}"
        created = await tenancy.create_tenant(self.db, name=name or slug, slug=slug)
        return created.id

    async def user(self, *, platform_admin: bool = False) -> uuid.UUID:
        """A new user with a unique email; returns its id."""
        email = f"u-{uuid.uuid4().hex[:10]}@example.test"
        created = await tenancy.create_user(self.db, email=email, is_platform_admin=platform_admin)
        return created.id

    async def member(
        self, tenant_id: uuid.UUID, *, role: OrgRole = "owner", user_id: uuid.UUID | None = None
    ) -> Seeded:
        """Add a (new, unless given) user to ``tenant_id`` with ``role``; token role = role."""
        user_id = user_id or await self.user()
        await tenancy.add_membership(self.db, tenant_id=tenant_id, user_id=user_id, org_role=role)
        headers = bearer_headers(self.secret, user_id=user_id, tenant_id=tenant_id, org_role=role)
        return Seeded(tenant_id, user_id, role, headers)

    async def tenant_admin(self, *, role: OrgRole = "owner") -> Seeded:
        """A new tenant and a new user holding ``role`` in it (default owner)."""
        return await self.member(await self.tenant(), role=role)

    def headers(self, seeded: Seeded, **overrides: Any) -> dict[str, str]:
        """Re-mint headers for ``seeded`` with claim/header overrides (see bearer_headers)."""
        params: dict[str, Any] = {
            "user_id": seeded.user_id,
            "tenant_id": seeded.tenant_id,
            "org_role": seeded.role,
        }
        params.update(overrides)
        return bearer_headers(self.secret, **params)

    def headers_for(
        self, user_id: uuid.UUID, tenant_id: uuid.UUID | None, **overrides: Any
    ) -> dict[str, str]:
        """Headers for any user/tenant pair (default role owner), with overrides."""
        params: dict[str, Any] = {"user_id": user_id, "tenant_id": tenant_id}
        params.update(overrides)
        return bearer_headers(self.secret, **params)
