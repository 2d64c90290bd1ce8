-- The user branch of the contract 9 authorisation chain in one round trip (web/auth.py).
--
-- $1 user id (token subject), $2 requested tenant (X-Tenant-ID; NULL when absent or
-- invalid), $3 the token's platform_admin claim, $4 the token's tenant_id claim, $5 app id
-- (NULL: no app in the path), $6 run id (NULL: no run in the path), $7 the runs' surface.
--
-- No row: the user does not exist. Otherwise one row: the app's columns (all NULL when the
-- app is not in the resolved tenant, or $5 is NULL) plus the access_* columns:
--   access_is_platform_admin  the user's flag;
--   access_tenant_id          the tenant the request acts in, NULL when there is none:
--                             the membership of $2 (or, without $2, the oldest membership,
--                             ties by tenant id); failing that, for a platform admin (flag
--                             and claim), $2 if that tenant exists, or $4 without $2;
--   access_org_role           the membership's role (NULL without a membership);
--   access_run_found          run $6 exists in that app, tenant and surface.
--
-- Written so that Postgres's generic plan is as cheap as a custom one and the prepared
-- statement keeps it (two of these per scripted run): with `$2 IS NULL OR tenant_id = $2`
-- and an inlined ctx the generic plan cost twice the custom one, so every call was
-- planned again (0.35 ms of planning for 0.05 ms of execution, pg_stat_statements with
-- track_planning). The membership is one of two index lookups, the other skipped by its
-- one-time filter; ctx is computed once.
-- name: access_user
WITH u AS (
    SELECT is_platform_admin, is_platform_admin AND $3::bool AS acting_admin
    FROM users
    WHERE id = $1
), m AS (
    SELECT * FROM (
    (SELECT tenant_id, org_role
     FROM memberships
     WHERE user_id = $1 AND tenant_id = $2::uuid)
    UNION ALL
    (SELECT tenant_id, org_role
     FROM memberships
     WHERE user_id = $1 AND $2::uuid IS NULL
     ORDER BY created_at, tenant_id
     LIMIT 1)
    ) AS one LIMIT 1
), ctx AS MATERIALIZED (
    SELECT
        u.is_platform_admin,
        m.org_role,
        CASE
            WHEN m.tenant_id IS NOT NULL THEN m.tenant_id
            WHEN NOT u.acting_admin THEN NULL
            WHEN $2::uuid IS NULL THEN $4::uuid
            WHEN EXISTS (SELECT 1 FROM tenants WHERE id = $2::uuid) THEN $2::uuid
        END AS tenant_id
    FROM u LEFT JOIN m ON true
)
SELECT
    a.*,
    ctx.is_platform_admin AS access_is_platform_admin,
    ctx.tenant_id AS access_tenant_id,
    ctx.org_role AS access_org_role,
    EXISTS (
        SELECT 1 FROM agent_runs r
        WHERE r.id = $6::uuid AND r.published_app_id = a.id AND r.tenant_id = ctx.tenant_id
          AND r.surface = $7::text
    ) AS access_run_found
FROM ctx
LEFT JOIN published_apps a ON a.id = $5::uuid AND a.tenant_id = ctx.tenant_id;
