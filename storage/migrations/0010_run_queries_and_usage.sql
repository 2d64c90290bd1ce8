-- Run queries and usage accounting (issue 12 items 3 and 4).

-- Keyset paging of run lists on (created_at, id), newest first, per app and across a
-- tenant's apps (storage/queries/run_pages.sql). The per-app index replaces
-- agent_runs_app_idx (published_app_id, surface, created_at DESC): `surface` has one value
-- and the id makes the order total, so a page boundary is one index position.
DROP INDEX IF EXISTS agent_runs_app_idx;
CREATE INDEX agent_runs_app_page_idx ON agent_runs (published_app_id, created_at DESC, id DESC);
CREATE INDEX agent_runs_tenant_page_idx ON agent_runs (tenant_id, created_at DESC, id DESC);

-- Usage of one model call or one tool call of a run, as its actor recorded it.
--   id: the engine's id for the call, so a write retried after a lost answer is a no-op.
--   kind: 'model' (a chat-completions request) or 'tool' (one tool call, commands included).
--   name: the provider's model id, or the tool's name.
--   model_id: the run's registry model (model calls only).
--   *_tokens: as the model's endpoint reported them; NULL when it reported none (never
--     estimated).
--   duration_ms: the call's wall time; NULL when the engine cannot tell (OpenCode steps).
--   ended_at: when the call ended; tenant totals over a time range select on it.
CREATE TABLE run_usage (
    id                 uuid PRIMARY KEY,
    run_id             uuid NOT NULL REFERENCES agent_runs(id) ON DELETE CASCADE,
    tenant_id          uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    published_app_id   uuid REFERENCES published_apps(id) ON DELETE CASCADE,
    model_id           uuid REFERENCES models(id) ON DELETE SET NULL,
    kind               text NOT NULL CHECK (kind IN ('model', 'tool')),
    name               text NOT NULL,
    prompt_tokens      integer CHECK (prompt_tokens >= 0),
    completion_tokens  integer CHECK (completion_tokens >= 0),
    total_tokens       integer CHECK (total_tokens >= 0),
    duration_ms        integer CHECK (duration_ms >= 0),
    ended_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX run_usage_tenant_idx ON run_usage (tenant_id, ended_at);
CREATE INDEX run_usage_run_idx ON run_usage (run_id);

-- A run's usage so far (the sums of its run_usage rows, kept with each insert so the run
-- object needs no aggregate): token sums are NULL until a call reported that count;
-- usage_model_calls_unreported counts model calls whose endpoint reported no usage (the
-- token sums then cover only the others).
ALTER TABLE agent_runs
    ADD COLUMN usage_prompt_tokens bigint,
    ADD COLUMN usage_completion_tokens bigint,
    ADD COLUMN usage_total_tokens bigint,
    ADD COLUMN usage_model_calls integer NOT NULL DEFAULT 0,
    ADD COLUMN usage_model_calls_unreported integer NOT NULL DEFAULT 0,
    ADD COLUMN usage_model_ms bigint NOT NULL DEFAULT 0,
    ADD COLUMN usage_tool_calls integer NOT NULL DEFAULT 0,
    ADD COLUMN usage_tool_ms bigint NOT NULL DEFAULT 0;
