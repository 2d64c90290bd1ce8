-- Operational counts for GET /metrics (read at scrape time, every node sees the same).

-- Live runs (queued and running: the partial index agent_runs_active_idx covers them) by
-- status, engine and tenant.
-- name: stats_live_runs
SELECT status, execution_engine AS engine, tenant_id, count(*)::int AS count
FROM agent_runs
WHERE status IN ('queued', 'running')
GROUP BY status, execution_engine, tenant_id;
