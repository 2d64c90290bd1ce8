-- Runwright schema, version 1.
-- Contract sections 2 (run record), 4 (model registry), 8 (apps and revisions), 9 (tenancy).
-- Every timestamp is timestamptz (UTC on the wire).

CREATE TABLE tenants (
    id          uuid PRIMARY KEY,
    name        text NOT NULL,
    slug        text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id                 uuid PRIMARY KEY,
    email              text NOT NULL UNIQUE,
    is_platform_admin  boolean NOT NULL DEFAULT false,
    created_at         timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE memberships (
    tenant_id   uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    user_id     uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    org_role    text NOT NULL CHECK (org_role IN ('owner', 'admin', 'member')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, user_id)
);
CREATE INDEX memberships_user_idx ON memberships (user_id, created_at);

CREATE TABLE published_apps (
    id                             uuid PRIMARY KEY,
    tenant_id                      uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name                           text NOT NULL,
    slug                           text NOT NULL UNIQUE,
    template_key                   text NOT NULL DEFAULT 'chat-classic',
    status                         text NOT NULL DEFAULT 'draft',
    visibility                     text NOT NULL DEFAULT 'private',
    current_draft_revision_id      uuid,
    current_published_revision_id  uuid,
    created_by                     uuid REFERENCES users(id) ON DELETE SET NULL,
    created_at                     timestamptz NOT NULL DEFAULT now(),
    updated_at                     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX published_apps_tenant_idx ON published_apps (tenant_id, created_at DESC);

-- Immutable snapshots: rows are inserted, never updated (contract section 8).
CREATE TABLE app_revisions (
    id                   uuid PRIMARY KEY,
    published_app_id     uuid NOT NULL REFERENCES published_apps(id) ON DELETE CASCADE,
    kind                 text NOT NULL DEFAULT 'draft' CHECK (kind IN ('draft', 'published')),
    template_key         text NOT NULL,
    entry_file           text NOT NULL DEFAULT 'src/main.tsx',
    files                jsonb NOT NULL,
    build_status         text NOT NULL DEFAULT 'queued'
                         CHECK (build_status IN ('queued', 'running', 'succeeded', 'failed')),
    build_seq            integer NOT NULL,
    build_error          text,
    build_started_at     timestamptz,
    build_finished_at    timestamptz,
    dist_storage_prefix  text,
    dist_manifest        jsonb,
    template_runtime     text NOT NULL DEFAULT 'vite_static',
    compiled_bundle      text,
    bundle_hash          text NOT NULL,
    source_revision_id   uuid REFERENCES app_revisions(id) ON DELETE SET NULL,
    created_by           uuid REFERENCES users(id) ON DELETE SET NULL,
    created_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX app_revisions_app_idx ON app_revisions (published_app_id, created_at DESC);

ALTER TABLE published_apps
    ADD CONSTRAINT published_apps_draft_fk FOREIGN KEY (current_draft_revision_id)
        REFERENCES app_revisions(id) ON DELETE SET NULL,
    ADD CONSTRAINT published_apps_published_fk FOREIGN KEY (current_published_revision_id)
        REFERENCES app_revisions(id) ON DELETE SET NULL;

-- Model registry (contract section 4). tenant_id NULL = global model.
CREATE TABLE models (
    id               uuid PRIMARY KEY,
    tenant_id        uuid REFERENCES tenants(id) ON DELETE CASCADE,
    name             text NOT NULL,
    capability_type  text NOT NULL DEFAULT 'chat',
    status           text NOT NULL DEFAULT 'active'
                     CHECK (status IN ('active', 'deprecated', 'disabled')),
    is_active        boolean NOT NULL DEFAULT true,
    is_default       boolean NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX models_tenant_idx ON models (tenant_id, created_at);

-- How to reach a model: never the key itself, only the name of the env var holding it.
CREATE TABLE model_bindings (
    id                 uuid PRIMARY KEY,
    model_id           uuid NOT NULL REFERENCES models(id) ON DELETE CASCADE,
    provider           text NOT NULL,
    provider_model_id  text NOT NULL,
    base_url           text NOT NULL,
    api_key_env        text,
    priority           integer NOT NULL DEFAULT 0,
    is_enabled         boolean NOT NULL DEFAULT true,
    created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX model_bindings_model_idx ON model_bindings (model_id, priority);

-- Runs (contract section 2) plus what DESIGN.md adds: the event seq counter, the resume
-- payload, the engine checkpoint, lease columns and the restart counter.
CREATE TABLE agent_runs (
    id                      uuid PRIMARY KEY,
    tenant_id               uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    published_app_id        uuid REFERENCES published_apps(id) ON DELETE CASCADE,
    user_id                 uuid REFERENCES users(id) ON DELETE SET NULL,
    initiator_user_id       uuid REFERENCES users(id) ON DELETE SET NULL,
    surface                 text NOT NULL DEFAULT 'published_app_coding_agent',
    base_revision_id        uuid REFERENCES app_revisions(id) ON DELETE SET NULL,
    result_revision_id      uuid REFERENCES app_revisions(id) ON DELETE SET NULL,
    checkpoint_revision_id  uuid REFERENCES app_revisions(id) ON DELETE SET NULL,
    requested_model_id      uuid REFERENCES models(id) ON DELETE SET NULL,
    resolved_model_id       uuid REFERENCES models(id) ON DELETE SET NULL,
    execution_engine        text NOT NULL DEFAULT 'native',
    engine_run_ref          text,
    status                  text NOT NULL DEFAULT 'queued'
                            CHECK (status IN ('queued', 'running', 'completed', 'failed',
                                              'cancelled', 'paused')),
    error_message           text,
    input_params            jsonb NOT NULL DEFAULT '{}'::jsonb,
    output_result           jsonb,
    checkpoint              jsonb,
    resume_payload          jsonb,
    last_event_seq          integer NOT NULL DEFAULT 0,
    lease_owner             text,
    lease_expires_at        timestamptz,
    restart_count           integer NOT NULL DEFAULT 0,
    created_at              timestamptz NOT NULL DEFAULT now(),
    started_at              timestamptz,
    completed_at            timestamptz
);
CREATE INDEX agent_runs_app_idx ON agent_runs (published_app_id, surface, created_at DESC);
CREATE INDEX agent_runs_active_idx ON agent_runs (status, lease_owner)
    WHERE status IN ('queued', 'running');

-- The persistent event log: seq is per run, starts at 1 and is gap-free (DESIGN.md section 4).
-- payload and diagnostics are `json`, not `jsonb`: json keeps the exact text, so a replayed
-- event is byte-identical to the one streamed live.
CREATE TABLE run_events (
    run_id       uuid NOT NULL REFERENCES agent_runs(id) ON DELETE CASCADE,
    seq          integer NOT NULL,
    type         text NOT NULL,
    stage        text NOT NULL,
    payload      json NOT NULL,
    diagnostics  json NOT NULL,
    ts           timestamptz NOT NULL,
    PRIMARY KEY (run_id, seq)
);
