"""Tenants, users and memberships (contract section 9).

Every function takes the :class:`~storage.database.Database` to run on, so callers can pass a
transaction-bound one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from storage.database import Database
from storage.records import maybe, returned

OrgRole = Literal["owner", "admin", "member"]
ORG_ROLES: tuple[OrgRole, ...] = ("owner", "admin", "member")


@dataclass(frozen=True, slots=True)
class Tenant:
    """An organisation; every app and tenant model belongs to exactly one."""

    id: uuid.UUID
    name: str
    slug: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class User:
    """A human principal. ``is_platform_admin`` may act in any tenant (contract 9)."""

    id: uuid.UUID
    email: str
    is_platform_admin: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Membership:
    """A user's role in one tenant: ``owner`` | ``admin`` | ``member``."""

    tenant_id: uuid.UUID
    user_id: uuid.UUID
    org_role: str
    created_at: datetime


async def create_tenant(db: Database, *, name: str, slug: str) -> Tenant:
    """Insert a tenant with a fresh id.

    Raises:
        UniqueViolation: ``slug`` is taken.
    """
    row = await db.fetchrow("tenancy_create_tenant", uuid.uuid4(), name, slug)
    return returned(Tenant, row)


async def get_tenant(db: Database, tenant_id: uuid.UUID) -> Tenant | None:
    """Return the tenant or ``None``."""
    return maybe(Tenant, await db.fetchrow("tenancy_get_tenant", tenant_id))


async def create_user(db: Database, *, email: str, is_platform_admin: bool = False) -> User:
    """Insert a user with a fresh id.

    Raises:
        UniqueViolation: ``email`` is taken.
    """
    row = await db.fetchrow("tenancy_create_user", uuid.uuid4(), email, is_platform_admin)
    return returned(User, row)


async def get_user(db: Database, user_id: uuid.UUID) -> User | None:
    """Return the user or ``None``."""
    return maybe(User, await db.fetchrow("tenancy_get_user", user_id))


async def add_membership(
    db: Database, *, tenant_id: uuid.UUID, user_id: uuid.UUID, org_role: OrgRole
) -> Membership:
    """Make ``user_id`` a member of ``tenant_id`` with ``org_role``.

    Raises:
        UniqueViolation: the user is already a member of that tenant.
        ForeignKeyViolation: the tenant or the user does not exist.
        StorageError: ``org_role`` is not one of :data:`ORG_ROLES`.
    """
    row = await db.fetchrow("tenancy_add_membership", tenant_id, user_id, org_role)
    return returned(Membership, row)


async def get_membership(
    db: Database, *, tenant_id: uuid.UUID, user_id: uuid.UUID
) -> Membership | None:
    """Return the user's membership of that tenant, or ``None``."""
    row = await db.fetchrow("tenancy_get_membership", tenant_id, user_id)
    return maybe(Membership, row)


async def first_membership(db: Database, user_id: uuid.UUID) -> Membership | None:
    """The user's oldest membership (ties broken by tenant id), or ``None``.

    Contract 9 uses "the first membership row" when no ``X-Tenant-ID`` is sent; the order
    makes that choice deterministic (the reference's is arbitrary, contract 11).
    """
    return maybe(Membership, await db.fetchrow("tenancy_first_membership", user_id))
