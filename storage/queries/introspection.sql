-- Schema introspection used by the migration tests.

-- name: test_list_tables
SELECT tablename FROM pg_tables WHERE schemaname = 'public';

-- name: test_applied_versions
SELECT version FROM schema_migrations ORDER BY version;

-- name: test_count_idempotency_keys
SELECT count(*) FROM run_idempotency_keys;
