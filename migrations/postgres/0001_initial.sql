-- rewind ledger, PostgreSQL dialect. Times are TIMESTAMPTZ (microsecond
-- precision), JSON documents are JSONB. Keep in step with
-- ../sqlite/0001_initial.sql: same tables, columns and indexes.

CREATE TABLE apps (
    name         TEXT PRIMARY KEY NOT NULL,
    source       TEXT NOT NULL,
    cluster      TEXT NOT NULL DEFAULT '',
    project      TEXT,
    sources      JSONB NOT NULL DEFAULT '[]',
    path         TEXT,
    rollbackable BOOLEAN NOT NULL,
    status       TEXT,
    held_since   TIMESTAMPTZ,
    updated_at   TIMESTAMPTZ NOT NULL
);

CREATE TABLE deployments (
    -- Identity: ids are never reused.
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    app              TEXT NOT NULL,
    cluster          TEXT NOT NULL,
    cluster_revision BIGINT NOT NULL,
    revision         TEXT NOT NULL,
    commit_sha       TEXT,
    tree             TEXT,
    config_hash      TEXT,
    images           JSONB NOT NULL DEFAULT '[]',
    health           TEXT NOT NULL,
    sync             TEXT NOT NULL,
    deployed_at      TIMESTAMPTZ NOT NULL,
    source           TEXT NOT NULL,
    known_good       BOOLEAN NOT NULL DEFAULT FALSE,
    healthy_since    TIMESTAMPTZ,
    alerted          BOOLEAN NOT NULL DEFAULT FALSE,
    initiated_by     TEXT,
    recorded_at      TIMESTAMPTZ NOT NULL,
    UNIQUE (app, cluster_revision)
);
CREATE INDEX deployments_known_good ON deployments (app, cluster_revision) WHERE known_good;
CREATE INDEX deployments_app_deployed_at ON deployments (app, deployed_at, cluster_revision);
CREATE INDEX deployments_app_commit ON deployments (app, commit_sha, cluster_revision);

CREATE TABLE webhook_deliveries (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source      TEXT NOT NULL,
    key         TEXT NOT NULL,
    received_at TIMESTAMPTZ NOT NULL,
    UNIQUE (source, key)
);

CREATE TABLE alerts (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    app           TEXT NOT NULL,
    cluster       TEXT,
    name          TEXT NOT NULL,
    status        TEXT NOT NULL,
    severity      TEXT,
    fingerprint   TEXT NOT NULL,
    group_key     TEXT NOT NULL,
    starts_at     TIMESTAMPTZ NOT NULL,
    ends_at       TIMESTAMPTZ,
    generator_url TEXT,
    labels        JSONB NOT NULL DEFAULT '{}',
    annotations   JSONB NOT NULL DEFAULT '{}',
    deployment_id BIGINT,
    received_at   TIMESTAMPTZ NOT NULL,
    UNIQUE (fingerprint, starts_at)
);
CREATE INDEX alerts_app ON alerts (app, id);
CREATE INDEX alerts_firing ON alerts (app) WHERE status = 'firing';

CREATE TABLE forge_events (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind        TEXT NOT NULL,
    repository  TEXT NOT NULL,
    pr_number   BIGINT,
    doc         JSONB NOT NULL,
    at          TIMESTAMPTZ NOT NULL,
    received_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX forge_events_pr ON forge_events (pr_number, id);

CREATE TABLE rollbacks (
    id                 TEXT PRIMARY KEY NOT NULL,
    app                TEXT NOT NULL,
    state              TEXT NOT NULL,
    from_deployment_id BIGINT NOT NULL,
    to_deployment_id   BIGINT NOT NULL,
    from_doc           JSONB NOT NULL,
    to_doc             JSONB NOT NULL,
    reason             TEXT NOT NULL,
    trigger            JSONB NOT NULL,
    strategy           TEXT NOT NULL,
    branch             TEXT,
    commit_sha         TEXT,
    merge_commit_sha   TEXT,
    pr_number          BIGINT,
    pr                 JSONB,
    diff               JSONB NOT NULL,
    risks              JSONB NOT NULL DEFAULT '[]',
    approvals          JSONB NOT NULL DEFAULT '[]',
    created_at         TIMESTAMPTZ NOT NULL,
    updated_at         TIMESTAMPTZ NOT NULL
);
-- At most one open (non-terminal) rollback per app, enforced by the database
-- so that concurrent requests and replicas cannot both open one.
CREATE UNIQUE INDEX rollbacks_one_open ON rollbacks (app)
    WHERE state IN ('proposed', 'pr_open', 'approved', 'merged', 'synced');
CREATE INDEX rollbacks_app_created ON rollbacks (app, created_at);
CREATE INDEX rollbacks_state_created ON rollbacks (state, created_at);
CREATE INDEX rollbacks_created ON rollbacks (created_at);
CREATE INDEX rollbacks_pr ON rollbacks (pr_number);
CREATE INDEX rollbacks_branch ON rollbacks (branch);

CREATE TABLE rollback_events (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rollback_id TEXT NOT NULL REFERENCES rollbacks (id),
    at          TIMESTAMPTZ NOT NULL,
    event       TEXT NOT NULL,
    detail      TEXT NOT NULL
);
CREATE INDEX rollback_events_rollback ON rollback_events (rollback_id, id);

CREATE TABLE audit_log (
    id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at       TIMESTAMPTZ NOT NULL,
    actor    TEXT NOT NULL,
    action   TEXT NOT NULL,
    subject  TEXT NOT NULL,
    detail   JSONB NOT NULL,
    trace_id TEXT
);
CREATE INDEX audit_log_subject ON audit_log (subject, id);

-- Append-only: the application has no API to change history, and the
-- database refuses it too.
CREATE FUNCTION rewind_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION rewind_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION rewind_append_only();
CREATE TRIGGER rollback_events_append_only BEFORE UPDATE OR DELETE ON rollback_events
    FOR EACH ROW EXECUTE FUNCTION rewind_append_only();

CREATE TABLE jobs (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind         TEXT NOT NULL,
    payload      JSONB NOT NULL,
    dedup_key    TEXT,
    state        TEXT NOT NULL DEFAULT 'queued',
    attempts     BIGINT NOT NULL DEFAULT 0,
    max_attempts BIGINT NOT NULL,
    run_at       TIMESTAMPTZ NOT NULL,
    locked_by    TEXT,
    locked_until TIMESTAMPTZ,
    last_error   TEXT,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL
);
-- A dedup key is unique among live jobs only: once a job is done or dead,
-- the same work may be enqueued again.
CREATE UNIQUE INDEX jobs_dedup ON jobs (dedup_key) WHERE state IN ('queued', 'running');
CREATE INDEX jobs_due ON jobs (run_at, id) WHERE state IN ('queued', 'running');
CREATE INDEX jobs_locked_by ON jobs (locked_by) WHERE state = 'running';
