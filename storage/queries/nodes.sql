-- Node liveness (docs/design.md 9, migration 0007): each serving process beats its row.

-- name: nodes_beat
INSERT INTO runwright_nodes (node_id) VALUES ($1)
ON CONFLICT (node_id) DO UPDATE SET heartbeat_at = now();

-- A node leaving on purpose marks itself dead at once: whatever it still owns is settled
-- by the others without waiting for its heartbeat to lapse.
-- name: nodes_leave
UPDATE runwright_nodes SET heartbeat_at = 'epoch' WHERE node_id = $1;

-- Rows of nodes silent for $1 s (long dead: nothing refers to them any more).
-- name: nodes_forget
DELETE FROM runwright_nodes WHERE heartbeat_at < now() - make_interval(secs => $1);
