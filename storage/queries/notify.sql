-- LISTEN/NOTIFY between nodes (docs/architecture.md, "Several nodes"). Payloads carry ids
-- only; Postgres caps them at 8000 bytes and delivers them on commit.

-- name: notify_send
SELECT pg_notify($1, $2);
