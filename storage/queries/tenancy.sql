-- Tenants, users and memberships (contract section 9).

-- name: tenancy_create_tenant
INSERT INTO tenants (id, name, slug) VALUES ($1, $2, $3) RETURNING *;

-- name: tenancy_get_tenant
SELECT * FROM tenants WHERE id = $1;

-- name: tenancy_create_user
INSERT INTO users (id, email, is_platform_admin) VALUES ($1, $2, $3) RETURNING *;

-- name: tenancy_get_user
SELECT * FROM users WHERE id = $1;

-- name: tenancy_add_membership
INSERT INTO memberships (tenant_id, user_id, org_role) VALUES ($1, $2, $3) RETURNING *;

-- name: tenancy_get_membership
SELECT * FROM memberships WHERE tenant_id = $1 AND user_id = $2;

-- The reference picks an arbitrary membership; we order so the choice is stable.
-- name: tenancy_first_membership
SELECT * FROM memberships WHERE user_id = $1 ORDER BY created_at, tenant_id LIMIT 1;
