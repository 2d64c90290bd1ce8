-- Usage totals of one tenant over [$2, $3) by when each call ended (migration 0010:
-- run_usage), for the whole tenant, per app and per model in one pass (GROUPING SETS).
-- `grouping` tells the sets apart: 3 the tenant total, 1 per app, 2 per model. Model
-- names come from the registry (NULL model_id: the model was deleted, or the run had none).
-- name: usage_tenant_totals
SELECT GROUPING(u.published_app_id, u.model_id) AS grouping,
    u.published_app_id AS app_id, u.model_id, min(m.name) AS model_name,
    sum(u.prompt_tokens)::bigint AS prompt_tokens,
    sum(u.completion_tokens)::bigint AS completion_tokens,
    sum(u.total_tokens)::bigint AS total_tokens,
    count(*) FILTER (WHERE u.kind = 'model') AS model_calls,
    count(*) FILTER (WHERE u.kind = 'model' AND u.prompt_tokens IS NULL
        AND u.completion_tokens IS NULL AND u.total_tokens IS NULL) AS model_calls_unreported,
    COALESCE(sum(u.duration_ms) FILTER (WHERE u.kind = 'model'), 0)::bigint AS model_ms,
    count(*) FILTER (WHERE u.kind = 'tool') AS tool_calls,
    COALESCE(sum(u.duration_ms) FILTER (WHERE u.kind = 'tool'), 0)::bigint AS tool_ms,
    count(DISTINCT u.run_id) AS runs
FROM run_usage u
LEFT JOIN models m ON m.id = u.model_id
WHERE u.tenant_id = $1 AND u.ended_at >= $2 AND u.ended_at < $3
GROUP BY GROUPING SETS ((), (u.published_app_id), (u.model_id))
ORDER BY grouping DESC, app_id, model_id;
