-- Pages of coding-agent runs (issue 12 item 4), keyset on (created_at, id): a page is the
-- runs strictly between two positions, so runs inserted meanwhile never shift a page (no
-- gap, no duplicate). Positions come from storage/run_pages.py, which folds the cursor and
-- the created_before / created_after filters into them. NULL status or engine arrays, or
-- a NULL session (migration 0012), mean "any". The _older queries read newest first, the _newer ones oldest first (the caller
-- turns those around). Indexes: migration 0010.
-- $1 app or tenant, ($2 tenant,) then: surface, statuses, engines, session, upper
-- (ts, id), lower (ts, id), limit.

-- name: run_pages_app_older
SELECT * FROM agent_runs
WHERE published_app_id = $1 AND tenant_id = $2 AND surface = $3
  AND ($4::text[] IS NULL OR status = ANY($4::text[]))
  AND ($5::text[] IS NULL OR execution_engine = ANY($5::text[]))
  AND ($6::uuid IS NULL OR session_id = $6::uuid)
  AND (created_at, id) < ($7::timestamptz, $8::uuid)
  AND (created_at, id) > ($9::timestamptz, $10::uuid)
ORDER BY created_at DESC, id DESC
LIMIT $11;

-- name: run_pages_app_newer
SELECT * FROM agent_runs
WHERE published_app_id = $1 AND tenant_id = $2 AND surface = $3
  AND ($4::text[] IS NULL OR status = ANY($4::text[]))
  AND ($5::text[] IS NULL OR execution_engine = ANY($5::text[]))
  AND ($6::uuid IS NULL OR session_id = $6::uuid)
  AND (created_at, id) < ($7::timestamptz, $8::uuid)
  AND (created_at, id) > ($9::timestamptz, $10::uuid)
ORDER BY created_at, id
LIMIT $11;

-- name: run_pages_tenant_older
SELECT * FROM agent_runs
WHERE tenant_id = $1 AND surface = $2
  AND ($3::text[] IS NULL OR status = ANY($3::text[]))
  AND ($4::text[] IS NULL OR execution_engine = ANY($4::text[]))
  AND ($5::uuid IS NULL OR session_id = $5::uuid)
  AND (created_at, id) < ($6::timestamptz, $7::uuid)
  AND (created_at, id) > ($8::timestamptz, $9::uuid)
ORDER BY created_at DESC, id DESC
LIMIT $10;

-- name: run_pages_tenant_newer
SELECT * FROM agent_runs
WHERE tenant_id = $1 AND surface = $2
  AND ($3::text[] IS NULL OR status = ANY($3::text[]))
  AND ($4::text[] IS NULL OR execution_engine = ANY($4::text[]))
  AND ($5::uuid IS NULL OR session_id = $5::uuid)
  AND (created_at, id) < ($6::timestamptz, $7::uuid)
  AND (created_at, id) > ($8::timestamptz, $9::uuid)
ORDER BY created_at, id
LIMIT $10;
