-- Model registry and provider bindings (contract section 4, DESIGN.md 8.10).
-- tenant_id NULL = a global model. A tenant sees its own models and the global ones.

-- name: models_insert
INSERT INTO models (id, tenant_id, name, capability_type, status, is_active, is_default)
VALUES ($1, $2, $3, $4, $5, $6, $7)
RETURNING *;

-- name: models_get
SELECT * FROM models WHERE id = $1;

-- name: models_get_visible
SELECT * FROM models WHERE id = $1 AND (tenant_id = $2 OR tenant_id IS NULL);

-- Tenant models first, then global; oldest first inside each group.
-- name: models_list_visible
SELECT * FROM models
WHERE tenant_id = $1 OR tenant_id IS NULL
ORDER BY (tenant_id IS NULL), created_at, id;

-- $5 is the owner the caller authorised (a tenant id, or NULL for a global model).
-- name: models_update
UPDATE models
SET is_active = coalesce($2, is_active),
    is_default = coalesce($3, is_default),
    status = coalesce($4, status),
    updated_at = now()
WHERE id = $1 AND tenant_id IS NOT DISTINCT FROM $5::uuid
RETURNING *;

-- "Same level" = same owner (one tenant, or global) and same capability.
-- name: models_clear_defaults
UPDATE models
SET is_default = false, updated_at = now()
WHERE tenant_id IS NOT DISTINCT FROM $1 AND capability_type = $2 AND id <> $3 AND is_default;


-- name: models_resolve
-- The rule lives in migration 0002 (resolve_chat_model).
SELECT * FROM resolve_chat_model($1, $2);

-- name: models_binding_insert
INSERT INTO model_bindings (
    id, model_id, provider, provider_model_id, base_url, api_key_env, priority, is_enabled,
    api_key_ciphertext
)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
RETURNING *;

-- name: models_bindings_delete
DELETE FROM model_bindings WHERE model_id = $1;

-- name: models_bindings_list
SELECT * FROM model_bindings WHERE model_id = ANY($1::uuid[])
ORDER BY model_id, priority, created_at, id;

-- Lowest priority number wins (0 before 10); ties: oldest, then id. With the model's owner
-- (model_tenant_id; NULL: global), so a run's start reads its binding in one statement.
-- name: models_binding_best
SELECT b.*, m.tenant_id AS model_tenant_id
FROM models m
CROSS JOIN LATERAL (
    SELECT * FROM model_bindings
    WHERE model_id = m.id AND is_enabled
    ORDER BY priority, created_at, id
    LIMIT 1
) b
WHERE m.id = $1;

-- name: models_any_exists
SELECT EXISTS (SELECT 1 FROM models);

-- name: models_bindings_by_provider
SELECT * FROM model_bindings WHERE provider = $1 ORDER BY created_at, id;

-- name: models_binding_set_endpoint
UPDATE model_bindings SET base_url = $2, provider_model_id = $3, api_key_env = $4 WHERE id = $1;
