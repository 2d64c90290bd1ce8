-- The chat model a run uses (contract section 4, made deterministic by DESIGN.md 8.10), as
-- one SQL function so run creation and the model repository share a single rule.
--   explicit p_model_id: that model if it is active, capability 'chat', and the tenant's or
--     global (its `status` is not checked, as the contract says);
--   auto (p_model_id NULL): the tenant's default, the global default, then any tenant
--     model, then any global model; oldest first; only models whose status is 'active'.
-- Returns no row when nothing qualifies.
CREATE FUNCTION resolve_chat_model(p_tenant_id uuid, p_model_id uuid)
RETURNS SETOF models
LANGUAGE sql STABLE
AS $$
    (
        SELECT * FROM models
        WHERE p_model_id IS NOT NULL AND id = p_model_id AND is_active
          AND capability_type = 'chat' AND (tenant_id = p_tenant_id OR tenant_id IS NULL)
    )
    UNION ALL
    (
        SELECT * FROM models
        WHERE p_model_id IS NULL AND is_active AND capability_type = 'chat'
          AND status = 'active' AND (tenant_id = p_tenant_id OR tenant_id IS NULL)
        ORDER BY
            CASE
                WHEN is_default AND tenant_id IS NOT NULL THEN 0
                WHEN is_default THEN 1
                WHEN tenant_id IS NOT NULL THEN 2
                ELSE 3
            END,
            created_at, id
        LIMIT 1
    )
$$;
