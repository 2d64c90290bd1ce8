-- Fair shares (docs/security.md): run creation counts the tenant's queued runs against
-- RUNWRIGHT_MAX_QUEUED_RUNS_PER_TENANT; this partial index keeps that count cheap.
CREATE INDEX agent_runs_tenant_queued_idx ON agent_runs (tenant_id) WHERE status = 'queued';
