"""The authorisation chain of contract section 9, in the order the contract fixes.

principal (bearer JWT) -> required scopes -> tenant context (``X-Tenant-ID``) -> "can manage
apps" -> app lookup scoped to the tenant. Each step raises :class:`~web.errors.ApiError` with
the contract's exact status and detail. Routes call :meth:`Authorizer.tenant_admin` (no app
in the path) or :meth:`Authorizer.app_access` (``/admin/apps/{app_id}/...``) first thing.

Decisions where the contract leaves room:
- A user token must name an existing user; platform admin needs both the user's
  ``is_platform_admin`` flag and the token's ``platform_admin`` claim (a token can drop
  powers, never add them).
- A user token's ``scopes`` claim, if present, narrows the role's scopes.
- Without ``X-Tenant-ID`` the "first membership" is the oldest (deterministic).
- A workload principal uses its token tenant; an ``X-Tenant-ID`` naming another tenant is
  refused with 403 "Not a member of the requested tenant".
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from quart import request

from storage import apps as apps_repo
from storage import tenancy
from storage.apps import App
from web.errors import ApiError
from web.services import Services
from web.tokens import InvalidToken, decode_token

MISSING_TOKEN = "Missing bearer token"
INVALID_TOKEN = "Could not validate principal token"
TENANT_REQUIRED = "Tenant context required"
INVALID_TENANT_HEADER = "Invalid X-Tenant-ID header"
NOT_A_MEMBER = "Not a member of the requested tenant"
CANNOT_MANAGE = "Insufficient permissions for apps management"
APP_NOT_FOUND = "Published app not found"

ALL_SCOPES = "*"
ADMIN_SCOPES = frozenset({"apps.read", "apps.write", "models.read", "models.write"})
MEMBER_SCOPES = frozenset({"apps.view"})
MANAGER_ROLES = frozenset({"owner", "admin"})

_BEARER_CHALLENGE = {"WWW-Authenticate": "Bearer"}


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, as proven by the token.

    Attributes:
        kind: ``"user"`` or ``"workload"``.
        subject: the user id or the workload principal id.
        token_tenant_id: the token's ``tenant_id`` claim.
        token_org_role: the token's ``org_role`` claim (decides scopes for users).
        scopes: effective scopes; ``{"*"}`` for platform admins.
        platform_admin: may act in any tenant.
    """

    kind: str
    subject: uuid.UUID
    token_tenant_id: uuid.UUID | None
    token_org_role: str | None
    scopes: frozenset[str]
    platform_admin: bool

    @property
    def user_id(self) -> uuid.UUID | None:
        """The acting user's id; ``None`` for workload principals."""
        return self.subject if self.kind == "user" else None

    def has_scopes(self, required: Iterable[str]) -> list[str]:
        """Return the required scopes this principal lacks (sorted), ``[]`` if none."""
        if ALL_SCOPES in self.scopes:
            return []
        return sorted(set(required) - self.scopes)


@dataclass(frozen=True, slots=True)
class AccessContext:
    """The outcome of the chain: who acts, in which tenant, with which role.

    ``app`` is set by :meth:`Authorizer.app_access` (the app row, already tenant-scoped).
    """

    principal: Principal
    tenant_id: uuid.UUID
    user_id: uuid.UUID | None
    org_role: str | None
    app: App | None = None


class Authorizer:
    """Runs the chain against the current Quart request; one per app, built by create_app."""

    def __init__(self, services: Services) -> None:
        self._services = services

    async def principal(self) -> Principal:
        """Step 1: the bearer token.

        Raises:
            ApiError: 401 "Missing bearer token", 401 "Could not validate principal token",
                403 "Tenant context required" (user token without ``tenant_id``).
        """
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, MISSING_TOKEN, headers=_BEARER_CHALLENGE)
        try:
            claims = decode_token(self._services.jwt_secret, token.strip())
            parsed = _parse_claims(claims)
        except (InvalidToken, ValueError, TypeError):
            raise ApiError(401, INVALID_TOKEN, headers=_BEARER_CHALLENGE) from None
        kind, subject, tenant_id, org_role, scopes, admin_claim = parsed
        if kind == "workload":
            return Principal(kind, subject, tenant_id, None, frozenset(scopes or ()), False)
        user = await tenancy.get_user(self._services.db, subject)
        if user is None:
            raise ApiError(401, INVALID_TOKEN, headers=_BEARER_CHALLENGE)
        if tenant_id is None:
            raise ApiError(403, TENANT_REQUIRED)
        platform_admin = user.is_platform_admin and admin_claim
        if platform_admin:
            derived = frozenset({ALL_SCOPES})
        elif org_role in MANAGER_ROLES:
            derived = ADMIN_SCOPES
        else:
            derived = MEMBER_SCOPES
        if scopes is not None:
            derived = frozenset(scopes) if ALL_SCOPES in derived else derived & set(scopes)
        return Principal(kind, subject, tenant_id, org_role, derived, platform_admin)

    @staticmethod
    def require_scopes(principal: Principal, scopes: Iterable[str]) -> None:
        """Step 2.

        Raises:
            ApiError: 403 "Missing required scopes: a, b".
        """
        missing = principal.has_scopes(scopes)
        if missing:
            raise ApiError(403, f"Missing required scopes: {', '.join(missing)}")

    async def tenant_context(self, principal: Principal) -> AccessContext:
        """Step 3: which tenant the request acts in, and the caller's role there.

        Raises:
            ApiError: 400 "Invalid X-Tenant-ID header", 403 "Not a member of the requested
                tenant", 403 "Tenant context required".
        """
        raw = request.headers.get("X-Tenant-ID")
        requested: uuid.UUID | None = None
        if raw is not None:
            try:
                requested = uuid.UUID(raw.strip())
            except ValueError:
                raise ApiError(400, INVALID_TENANT_HEADER) from None

        if principal.kind == "workload":
            tenant = principal.token_tenant_id
            if tenant is None:
                raise ApiError(403, TENANT_REQUIRED)
            if requested is not None and requested != tenant:
                raise ApiError(403, NOT_A_MEMBER)
            return AccessContext(principal, tenant, None, None)

        db = self._services.db
        user_id = principal.subject
        if requested is not None:
            membership = await tenancy.get_membership(db, tenant_id=requested, user_id=user_id)
            if membership is not None:
                return AccessContext(principal, requested, user_id, membership.org_role)
            if principal.platform_admin and await tenancy.get_tenant(db, requested):
                return AccessContext(principal, requested, user_id, None)
            raise ApiError(403, NOT_A_MEMBER)

        first = await tenancy.first_membership(db, user_id)
        if first is not None:
            return AccessContext(principal, first.tenant_id, user_id, first.org_role)
        if principal.platform_admin and principal.token_tenant_id is not None:
            return AccessContext(principal, principal.token_tenant_id, user_id, None)
        raise ApiError(403, TENANT_REQUIRED)

    @staticmethod
    def require_manage(ctx: AccessContext) -> None:
        """Step 4: platform admin, or org role owner/admin in the tenant.

        Raises:
            ApiError: 403 "Insufficient permissions for apps management".
        """
        if ctx.principal.platform_admin or ctx.org_role in MANAGER_ROLES:
            return
        raise ApiError(403, CANNOT_MANAGE)

    async def tenant_admin(self, *scopes: str) -> AccessContext:
        """Steps 1-4: for routes that act on the tenant (app list/create, models)."""
        principal = await self.principal()
        self.require_scopes(principal, scopes)
        ctx = await self.tenant_context(principal)
        self.require_manage(ctx)
        return ctx

    async def app_access(self, app_id: uuid.UUID, *scopes: str) -> AccessContext:
        """Steps 1-5: for ``/admin/apps/{app_id}/...`` routes.

        Returns:
            The context with ``app`` set to the tenant's app row.

        Raises:
            ApiError: any of steps 1-4, then 404 "Published app not found" when the app does
                not exist *in the tenant* (another tenant's app looks the same as none).
        """
        ctx = await self.tenant_admin(*scopes)
        app = await apps_repo.get_app(self._services.db, app_id=app_id, tenant_id=ctx.tenant_id)
        if app is None:
            raise ApiError(404, APP_NOT_FOUND)
        return AccessContext(ctx.principal, ctx.tenant_id, ctx.user_id, ctx.org_role, app)


def _parse_claims(
    claims: dict[str, Any],
) -> tuple[str, uuid.UUID, uuid.UUID | None, str | None, list[str] | None, bool]:
    """Check claim types; raises ValueError/TypeError when one is wrong."""
    kind = claims.get("kind", "user")
    if kind not in ("user", "workload"):
        raise ValueError("unknown principal kind")
    subject = uuid.UUID(str(claims["sub"]))
    raw_tenant = claims.get("tenant_id")
    tenant_id = None if raw_tenant in (None, "") else uuid.UUID(str(raw_tenant))
    org_role = claims.get("org_role")
    if org_role is not None and not isinstance(org_role, str):
        raise TypeError("org_role must be a string")
    scopes = claims.get("scopes")
    if scopes is not None and (
        not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes)
    ):
        raise TypeError("scopes must be a list of strings")
    admin = claims.get("platform_admin", False)
    if not isinstance(admin, bool):
        raise TypeError("platform_admin must be a boolean")
    return kind, subject, tenant_id, org_role, scopes, admin
