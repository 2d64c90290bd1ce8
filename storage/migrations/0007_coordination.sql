-- Scale-out coordination (docs/design.md section 9, issue 11): several nodes share this
-- database as their run queue.
--
-- claim_token is a run's fencing token: bumped by every statement that hands the run to
-- someone (a claim from the queue, a take-over after a crash or a node's death) and by
-- every status write. Each later status or event write of the run names the token its
-- writer holds and is refused once the token moved on, so a stalled old owner cannot write
-- after another node took the run.
ALTER TABLE agent_runs ADD COLUMN claim_token bigint NOT NULL DEFAULT 0;

-- The claim query's order: oldest queued runs first.
CREATE INDEX agent_runs_queued_order_idx ON agent_runs (created_at, id) WHERE status = 'queued';

-- Node liveness: each serving process upserts its row every
-- RUNWRIGHT_NODE_HEARTBEAT_SECONDS; a node whose heartbeat_at is older than
-- RUNWRIGHT_NODE_DEAD_SECONDS is dead, and the others settle its running runs.
CREATE TABLE runwright_nodes (
    node_id       text PRIMARY KEY,
    started_at    timestamptz NOT NULL DEFAULT now(),
    heartbeat_at  timestamptz NOT NULL DEFAULT now()
);
