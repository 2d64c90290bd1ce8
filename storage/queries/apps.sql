-- Published apps and their immutable revisions (contract section 8).
-- Every app query is scoped by tenant; revisions are scoped by their app.

-- name: apps_insert
INSERT INTO published_apps (id, tenant_id, name, slug, template_key, created_by)
VALUES ($1, $2, $3, $4, $5, $6)
RETURNING *;

-- name: apps_get
SELECT * FROM published_apps WHERE id = $1 AND tenant_id = $2;

-- name: apps_list
SELECT * FROM published_apps WHERE tenant_id = $1 ORDER BY created_at DESC, id;

-- name: apps_revision_insert
INSERT INTO app_revisions (
    id, published_app_id, kind, template_key, entry_file, files, build_seq, bundle_hash,
    source_revision_id, created_by
)
VALUES ($1, $2, 'draft', $3, $4, $5, $6, $7, $8, $9)
RETURNING *;

-- name: apps_revision_get
SELECT * FROM app_revisions WHERE id = $1 AND published_app_id = $2;

-- Optimistic concurrency: the pointer moves only if it still names the base the new revision
-- was built on, so of two racing writers exactly one wins (the other gets no row back).
-- name: apps_move_draft_pointer
UPDATE published_apps
SET current_draft_revision_id = $3, updated_at = now()
WHERE id = $1 AND tenant_id = $2 AND current_draft_revision_id IS NOT DISTINCT FROM $4
RETURNING *;

-- An app's coding-agent settings (migration 0013): its default approval policy.
-- name: apps_get_agent_settings
SELECT approval_policy FROM published_apps WHERE id = $1 AND tenant_id = $2;

-- name: apps_set_approval_policy
UPDATE published_apps SET approval_policy = $3, updated_at = now()
WHERE id = $1 AND tenant_id = $2
RETURNING approval_policy;
