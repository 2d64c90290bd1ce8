"""The authorisation chain of contract section 9: exact statuses and details."""

from __future__ import annotations

import uuid

import pytest

from tests.support.api import create_app_via_api
from web.tokens import mint_token


async def _detail(response):
    return (await response.get_json())["detail"]


async def test_missing_bearer_token_is_401(client):
    response = await client.get("/admin/apps")
    assert response.status_code == 401
    assert await _detail(response) == "Missing bearer token"
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_non_bearer_scheme_is_missing_token(client):
    response = await client.get("/admin/apps", headers={"Authorization": "Basic abc"})
    assert response.status_code == 401
    assert await _detail(response) == "Missing bearer token"


@pytest.mark.parametrize(
    "token",
    [
        "not-a-jwt",
        mint_token(
            "another-secret-0123456789-0123456789-0123456789", subject=uuid.uuid4(), tenant_id=None
        ),
    ],
)
async def test_invalid_token_is_401(client, token):
    response = await client.get("/admin/apps", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert await _detail(response) == "Could not validate principal token"


async def test_expired_token_is_401(client, seed, owner):
    headers = seed.headers(owner, ttl_seconds=-10)
    response = await client.get("/admin/apps", headers=headers)
    assert response.status_code == 401
    assert await _detail(response) == "Could not validate principal token"


async def test_token_for_unknown_user_is_401(client, seed, owner):
    headers = seed.headers(owner, user_id=uuid.uuid4())
    response = await client.get("/admin/apps", headers=headers)
    assert response.status_code == 401
    assert await _detail(response) == "Could not validate principal token"


async def test_user_token_without_tenant_claim_is_403(client, seed, owner):
    headers = seed.headers(owner, tenant_id=None, header_tenant=owner.tenant_id)
    response = await client.get("/admin/apps", headers=headers)
    assert response.status_code == 403
    assert await _detail(response) == "Tenant context required"


async def test_member_role_lacks_apps_scopes(client, seed, owner):
    member = await seed.member(owner.tenant_id, role="member")
    response = await client.get("/admin/apps", headers=member.headers)
    assert response.status_code == 403
    assert await _detail(response) == "Missing required scopes: apps.read"
    response = await client.post("/admin/apps", json={}, headers=member.headers)
    assert await _detail(response) == "Missing required scopes: apps.write"


async def test_narrowed_token_scopes_are_enforced(client, seed, owner):
    headers = seed.headers(owner, scopes=["apps.read"])
    assert (await client.get("/admin/apps", headers=headers)).status_code == 200
    response = await client.post("/admin/apps", json={"name": "x", "slug": "x"}, headers=headers)
    assert response.status_code == 403
    assert await _detail(response) == "Missing required scopes: apps.write"


async def test_token_role_admin_but_membership_member_cannot_manage(client, seed, owner):
    member = await seed.member(owner.tenant_id, role="member")
    headers = seed.headers(member, org_role="admin")
    response = await client.get("/admin/apps", headers=headers)
    assert response.status_code == 403
    assert await _detail(response) == "Insufficient permissions for apps management"


async def test_invalid_tenant_header_is_400(client, owner):
    headers = {**owner.headers, "X-Tenant-ID": "not-a-uuid"}
    response = await client.get("/admin/apps", headers=headers)
    assert response.status_code == 400
    assert await _detail(response) == "Invalid X-Tenant-ID header"


async def test_tenant_header_of_foreign_tenant_is_403(client, seed, owner):
    other = await seed.tenant_admin()
    headers = {**owner.headers, "X-Tenant-ID": str(other.tenant_id)}
    response = await client.get("/admin/apps", headers=headers)
    assert response.status_code == 403
    assert await _detail(response) == "Not a member of the requested tenant"


async def test_without_header_the_oldest_membership_is_used(client, seed, owner):
    second_tenant = await seed.tenant()
    await seed.member(second_tenant, role="owner", user_id=owner.user_id)
    app, _ = await create_app_via_api(client, owner.headers)  # created in owner.tenant_id
    no_header = {"Authorization": owner.headers["Authorization"]}
    listed = await (await client.get("/admin/apps", headers=no_header)).get_json()
    assert [a["id"] for a in listed] == [app["id"]]


async def test_user_without_membership_and_no_header_is_403(client, seed):
    user_id = await seed.user()
    tenant_id = await seed.tenant()
    headers = {"Authorization": seed.headers_for(user_id, tenant_id)["Authorization"]}
    response = await client.get("/admin/apps", headers=headers)
    assert response.status_code == 403
    assert await _detail(response) == "Tenant context required"


async def test_platform_admin_acts_in_any_existing_tenant(client, seed, owner):
    admin_id = await seed.user(platform_admin=True)
    headers = seed.headers_for(admin_id, owner.tenant_id, platform_admin=True, org_role=None)
    response = await client.get("/admin/apps", headers=headers)
    assert response.status_code == 200
    # The claim alone grants nothing: a platform-admin claim for a plain user is refused.
    plain_id = await seed.user()
    forged = seed.headers_for(plain_id, owner.tenant_id, platform_admin=True, org_role=None)
    response = await client.get("/admin/apps", headers=forged)
    assert response.status_code == 403
    assert await _detail(response) == "Missing required scopes: apps.read"


async def test_workload_principal_is_refused_by_the_manage_check(client, services, owner):
    token = mint_token(
        services.jwt_secret,
        subject=uuid.uuid4(),
        tenant_id=owner.tenant_id,
        kind="workload",
        scopes=["apps.read", "apps.write"],
    )
    response = await client.get("/admin/apps", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403
    assert await _detail(response) == "Insufficient permissions for apps management"


async def test_workload_principal_needs_its_scopes(client, services, owner):
    token = mint_token(
        services.jwt_secret, subject=uuid.uuid4(), tenant_id=owner.tenant_id, kind="workload"
    )
    response = await client.get("/admin/apps", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403
    assert await _detail(response) == "Missing required scopes: apps.read"


async def test_owner_of_another_tenant_gets_404_for_the_app(client, seed, owner):
    app, draft = await create_app_via_api(client, owner.headers)
    intruder = await seed.tenant_admin()
    for path in (
        f"/admin/apps/{app['id']}",
        f"/admin/apps/{app['id']}/builder/state",
        f"/admin/apps/{app['id']}/revisions/{draft['id']}",
    ):
        response = await client.get(path, headers=intruder.headers)
        assert response.status_code == 404, path
        assert await _detail(response) == "Published app not found"
    response = await client.post(
        f"/admin/apps/{app['id']}/builder/revisions",
        json={"files": draft["files"]},
        headers=intruder.headers,
    )
    assert response.status_code == 404
    listed = await (await client.get("/admin/apps", headers=intruder.headers)).get_json()
    assert listed == []


async def test_platform_admin_without_membership(client, seed, owner):
    """The branches the one-query chain (storage/queries/access.sql) folds together."""
    admin_id = await seed.user(platform_admin=True)
    app, _ = await create_app_via_api(client, owner.headers)
    # A tenant that does not exist: not a member, even for a platform admin.
    headers = seed.headers_for(
        admin_id, owner.tenant_id, platform_admin=True, org_role=None, header_tenant=uuid.uuid4()
    )
    response = await client.get("/admin/apps", headers=headers)
    assert response.status_code == 403
    assert await _detail(response) == "Not a member of the requested tenant"
    # No header and no membership: the token's tenant, and its apps are visible.
    bare = seed.headers_for(admin_id, owner.tenant_id, platform_admin=True, org_role=None)
    bare.pop("X-Tenant-ID")
    listed = await (await client.get("/admin/apps", headers=bare)).get_json()
    assert [a["id"] for a in listed] == [app["id"]]
    response = await client.get(f"/admin/apps/{app['id']}", headers=bare)
    assert response.status_code == 200
    # The same without the claim: no tenant context at all.
    no_claim = seed.headers_for(admin_id, owner.tenant_id, org_role="owner")
    no_claim.pop("X-Tenant-ID")
    response = await client.get("/admin/apps", headers=no_claim)
    assert response.status_code == 403
    assert await _detail(response) == "Tenant context required"


async def test_invalid_tenant_header_comes_after_scopes_and_before_membership(client, seed, owner):
    narrowed = seed.headers(owner, scopes=["apps.read"], header_tenant="not-a-uuid")
    response = await client.post("/admin/apps", json={"name": "x"}, headers=narrowed)
    assert response.status_code == 403
    assert await _detail(response) == "Missing required scopes: apps.write"
    unknown = seed.headers(owner, user_id=uuid.uuid4(), header_tenant="not-a-uuid")
    response = await client.get("/admin/apps", headers=unknown)
    assert response.status_code == 401
    response = await client.get("/admin/apps", headers=seed.headers(owner, header_tenant="x"))
    assert response.status_code == 400
    assert await _detail(response) == "Invalid X-Tenant-ID header"
