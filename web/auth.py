"""The authorisation chain of contract section 9, in the order the contract fixes.

principal (bearer JWT) -> required scopes -> tenant context (``X-Tenant-ID``) -> "can manage
apps" -> app lookup scoped to the tenant. Each step raises :class:`~web.errors.ApiError` with
the contract's exact status and detail. Routes call :meth:`Authorizer.tenant_admin` (no app
in the path), :meth:`Authorizer.app_access` (``/admin/apps/{app_id}/...``) or
:meth:`Authorizer.run_access` (``.../runs/{run_id}/...``) first thing. For a user token the
lookups of all steps are one query; the checks still run in this order on its answer.

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
from dataclasses import dataclass, replace
from typing import Any

from quart import request

from runtime.logs import bind as bind_log_context
from storage import access as access_repo
from storage import apps as apps_repo
from storage.apps import App
from storage.runs import RunStore
from web.errors import RUN_NOT_FOUND, ApiError
from web.services import Services
from web.tokens import InvalidToken, VerifiedTokens

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

BEARER_CHALLENGE = {"WWW-Authenticate": "Bearer"}
"""The challenge every 401 carries (RFC 9110 11.6.1, RFC 6750 3): the bearer token is the
credential, also where a stream ticket was refused (the stream takes either)."""


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
    """Runs the chain against the current Quart request; one per app, built by create_app.

    For a user token the database part of steps 1, 3 and 5 (user, membership or tenant,
    app, and for run routes the run) is one query (:func:`storage.access.user_access`); the
    checks then run in the contract's order on its answer, so every status and detail is
    what the step-by-step chain gives.
    """

    def __init__(self, services: Services) -> None:
        self._services = services
        self._tokens = VerifiedTokens()

    def _claims(
        self,
    ) -> tuple[str, uuid.UUID, uuid.UUID | None, str | None, list[str] | None, bool]:
        """Step 1, the token itself.

        Raises:
            ApiError: 401 "Missing bearer token", 401 "Could not validate principal token".
        """
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, MISSING_TOKEN, headers=BEARER_CHALLENGE)
        try:
            claims = self._tokens.decode(self._services.jwt_secret, token.strip())
            return _parse_claims(claims)
        except (InvalidToken, ValueError, TypeError):
            raise ApiError(401, INVALID_TOKEN, headers=BEARER_CHALLENGE) from None

    @staticmethod
    def require_scopes(principal: Principal, scopes: Iterable[str]) -> None:
        """Step 2.

        Raises:
            ApiError: 403 "Missing required scopes: a, b".
        """
        missing = principal.has_scopes(scopes)
        if missing:
            raise ApiError(403, f"Missing required scopes: {', '.join(missing)}")

    @staticmethod
    def require_manage(ctx: AccessContext) -> None:
        """Step 4: platform admin, or org role owner/admin in the tenant.

        Raises:
            ApiError: 403 "Insufficient permissions for apps management".
        """
        if ctx.principal.platform_admin or ctx.org_role in MANAGER_ROLES:
            return
        raise ApiError(403, CANNOT_MANAGE)

    async def _chain(
        self, scopes: Iterable[str], app_id: uuid.UUID | None, run_id: uuid.UUID | None
    ) -> tuple[AccessContext, bool]:
        """Steps 1-5 (step 5 only with ``app_id``); also whether ``run_id`` exists in the
        app and tenant (False without ``run_id``).

        Raises:
            ApiError: in the contract's order: 401 "Missing bearer token" / "Could not
                validate principal token" (also: a user token naming no user); 403 "Tenant
                context required" (user token without ``tenant_id``); 403 "Missing required
                scopes: ..."; 400 "Invalid X-Tenant-ID header"; 403 "Not a member of the
                requested tenant" / "Tenant context required"; 403 "Insufficient
                permissions for apps management"; 404 "Published app not found".
        """
        kind, subject, token_tenant, org_role, scopes_claim, admin_claim = self._claims()
        raw = request.headers.get("X-Tenant-ID")
        requested: uuid.UUID | None = None
        header_valid = True
        if raw is not None:
            try:
                requested = uuid.UUID(raw.strip())
            except ValueError:
                header_valid = False  # 400, but only after steps 1-2 (contract order)
        if kind == "workload":
            return await self._workload_chain(
                Principal(kind, subject, token_tenant, None, frozenset(scopes_claim or ()), False),
                scopes, requested, header_valid, app_id, run_id,
            )  # fmt: skip

        access = await access_repo.user_access(
            self._services.db,
            user_id=subject,
            requested_tenant_id=requested,
            admin_claim=admin_claim,
            token_tenant_id=token_tenant,
            app_id=app_id,
            run_id=run_id,
        )
        # Step 1: the user must exist; a user token must name a tenant.
        if access is None:
            raise ApiError(401, INVALID_TOKEN, headers=BEARER_CHALLENGE)
        if token_tenant is None:
            raise ApiError(403, TENANT_REQUIRED)
        platform_admin = access.is_platform_admin and admin_claim
        if platform_admin:
            derived = frozenset({ALL_SCOPES})
        elif org_role in MANAGER_ROLES:
            derived = ADMIN_SCOPES
        else:
            derived = MEMBER_SCOPES
        if scopes_claim is not None:
            derived = (
                frozenset(scopes_claim) if ALL_SCOPES in derived else derived & set(scopes_claim)
            )
        principal = Principal(kind, subject, token_tenant, org_role, derived, platform_admin)
        # Step 2.
        self.require_scopes(principal, scopes)
        # Step 3: the tenant (the membership of X-Tenant-ID, else the oldest membership;
        # a platform admin may act without one).
        if not header_valid:
            raise ApiError(400, INVALID_TENANT_HEADER)
        if access.tenant_id is None:
            raise ApiError(403, NOT_A_MEMBER if requested is not None else TENANT_REQUIRED)
        ctx = AccessContext(principal, access.tenant_id, subject, access.org_role)
        # Step 4.
        self.require_manage(ctx)
        if app_id is None:
            return ctx, False
        # Step 5: the app, scoped to the tenant.
        if access.app is None:
            raise ApiError(404, APP_NOT_FOUND)
        return replace(ctx, app=access.app), access.run_found

    async def _workload_chain(
        self,
        principal: Principal,
        scopes: Iterable[str],
        requested: uuid.UUID | None,
        header_valid: bool,
        app_id: uuid.UUID | None,
        run_id: uuid.UUID | None,
    ) -> tuple[AccessContext, bool]:
        """Steps 2-5 for a workload principal: its token tenant, no membership."""
        self.require_scopes(principal, scopes)
        if not header_valid:
            raise ApiError(400, INVALID_TENANT_HEADER)
        tenant = principal.token_tenant_id
        if tenant is None:
            raise ApiError(403, TENANT_REQUIRED)
        if requested is not None and requested != tenant:
            raise ApiError(403, NOT_A_MEMBER)
        ctx = AccessContext(principal, tenant, None, None)
        self.require_manage(ctx)  # no org role: refused unless that rule changes
        if app_id is None:
            return ctx, False
        db = self._services.db
        app = await apps_repo.get_app(db, app_id=app_id, tenant_id=tenant)
        if app is None:
            raise ApiError(404, APP_NOT_FOUND)
        found = run_id is not None and (
            await RunStore(db).get_for_app(run_id, app_id, tenant) is not None
        )
        return replace(ctx, app=app), found

    async def tenant_admin(self, *scopes: str) -> AccessContext:
        """Steps 1-4: for routes that act on the tenant (app list/create, models)."""
        ctx, _ = await self._chain(scopes, None, None)
        bind_log_context(tenant_id=ctx.tenant_id)
        return ctx

    async def app_access(self, app_id: uuid.UUID, *scopes: str) -> AccessContext:
        """Steps 1-5: for ``/admin/apps/{app_id}/...`` routes.

        Returns:
            The context with ``app`` set to the tenant's app row.

        Raises:
            ApiError: any of steps 1-4, then 404 "Published app not found" when the app does
                not exist *in the tenant* (another tenant's app looks the same as none).
        """
        ctx, _ = await self._chain(scopes, app_id, None)
        bind_log_context(tenant_id=ctx.tenant_id)
        return ctx

    async def run_access(self, app_id: uuid.UUID, run_id: uuid.UUID, *scopes: str) -> AccessContext:
        """Steps 1-5, then the run must exist in the app and tenant (docs/design.md 8.8): for run
        routes that do not need the run's row (stream, resume, cancel).

        Raises:
            ApiError: as :meth:`app_access`, then 404 "Coding-agent run not found".
        """
        ctx, found = await self._chain(scopes, app_id, run_id)
        if not found:
            raise ApiError(404, RUN_NOT_FOUND)
        bind_log_context(tenant_id=ctx.tenant_id)
        return ctx


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
