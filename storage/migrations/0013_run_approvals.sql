-- Human approval of tool calls (issue 12 item 2, docs/design.md section 10).
--
-- An app's default approval policy: which tool calls of its runs wait for a person
-- ('none': none, as before; 'commands': tools that run commands; 'patches': tools that
-- write files; 'all': every tool call). A run's own policy (its create field) wins.
ALTER TABLE published_apps ADD COLUMN approval_policy text NOT NULL DEFAULT 'none'
    CHECK (approval_policy IN ('none', 'commands', 'patches', 'all'));

-- A run paused on an approval request fails closed once this passes (NULL: a pause that
-- waits for no approval, e.g. the scripted engine's). The engine state the run resumes
-- from (conversation, pending tool call, counters) is agent_runs.checkpoint, written in
-- the same statement as the 'paused' status; the periodic sweep finds expired pauses
-- through this index and fails each with a conditional UPDATE.
ALTER TABLE agent_runs ADD COLUMN approval_expires_at timestamptz;
CREATE INDEX agent_runs_approval_expiry_idx ON agent_runs (approval_expires_at)
    WHERE status = 'paused' AND approval_expires_at IS NOT NULL;
