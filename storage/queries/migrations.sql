-- name: migrations_lock
SELECT pg_advisory_xact_lock(727140001);

-- name: migrations_create_table
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
);

-- name: migrations_is_applied
SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1);

-- name: migrations_record
INSERT INTO schema_migrations (version, name) VALUES ($1, $2);

-- name: health_ping
SELECT 1;
