-- rewind ledger, SQLite dialect. Times are INTEGER microseconds since the
-- Unix epoch (UTC) so that SQL comparison and ordering are numeric and exact.
-- JSON documents are TEXT. Keep in step with ../postgres/0001_initial.sql.

CREATE TABLE apps (
    name         TEXT PRIMARY KEY NOT NULL,
    source       TEXT NOT NULL,
    cluster      TEXT NOT NULL DEFAULT '',
    project      TEXT,
    sources      TEXT NOT NULL DEFAULT '[]',
    path         TEXT,
    rollbackable BOOLEAN NOT NULL,
    status       TEXT,
    held_since   INTEGER,
    updated_at   INTEGER NOT NULL
);

CREATE TABLE deployments (
    -- AUTOINCREMENT: ids are never reused, even after the newest row is gone.
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    app              TEXT NOT NULL,
    cluster          TEXT NOT NULL,
    cluster_revision INTEGER NOT NULL,
    revision         TEXT NOT NULL,
    commit_sha       TEXT,
    tree             TEXT,
    config_hash      TEXT,
    images           TEXT NOT NULL DEFAULT '[]',
    health           TEXT NOT NULL,
    sync             TEXT NOT NULL,
    deployed_at      INTEGER NOT NULL,
    source           TEXT NOT NULL,
    known_good       BOOLEAN NOT NULL DEFAULT FALSE,
    healthy_since    INTEGER,
    alerted          BOOLEAN NOT NULL DEFAULT FALSE,
    initiated_by     TEXT,
    recorded_at      INTEGER NOT NULL,
    UNIQUE (app, cluster_revision)
);
CREATE INDEX deployments_known_good ON deployments (app, cluster_revision) WHERE known_good;
CREATE INDEX deployments_app_deployed_at ON deployments (app, deployed_at, cluster_revision);
CREATE INDEX deployments_app_commit ON deployments (app, commit_sha, cluster_revision);

CREATE TABLE webhook_deliveries (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    source      TEXT NOT NULL,
    key         TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    UNIQUE (source, key)
);

CREATE TABLE alerts (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    app           TEXT NOT NULL,
    cluster       TEXT,
    name          TEXT NOT NULL,
    status        TEXT NOT NULL,
    severity      TEXT,
    fingerprint   TEXT NOT NULL,
    group_key     TEXT NOT NULL,
    starts_at     INTEGER NOT NULL,
    ends_at       INTEGER,
    generator_url TEXT,
    labels        TEXT NOT NULL DEFAULT '{}',
    annotations   TEXT NOT NULL DEFAULT '{}',
    deployment_id INTEGER,
    received_at   INTEGER NOT NULL,
    UNIQUE (fingerprint, starts_at)
);
CREATE INDEX alerts_app ON alerts (app, id);
CREATE INDEX alerts_firing ON alerts (app) WHERE status = 'firing';

CREATE TABLE forge_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT NOT NULL,
    repository  TEXT NOT NULL,
    pr_number   INTEGER,
    doc         TEXT NOT NULL,
    at          INTEGER NOT NULL,
    received_at INTEGER NOT NULL
);
CREATE INDEX forge_events_pr ON forge_events (pr_number, id);

CREATE TABLE rollbacks (
    id                 TEXT PRIMARY KEY NOT NULL,
    app                TEXT NOT NULL,
    state              TEXT NOT NULL,
    from_deployment_id INTEGER NOT NULL,
    to_deployment_id   INTEGER NOT NULL,
    from_doc           TEXT NOT NULL,
    to_doc             TEXT NOT NULL,
    reason             TEXT NOT NULL,
    trigger            TEXT NOT NULL,
    strategy           TEXT NOT NULL,
    branch             TEXT,
    commit_sha         TEXT,
    merge_commit_sha   TEXT,
    pr_number          INTEGER,
    pr                 TEXT,
    diff               TEXT NOT NULL,
    risks              TEXT NOT NULL DEFAULT '[]',
    approvals          TEXT NOT NULL DEFAULT '[]',
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL
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
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    rollback_id TEXT NOT NULL REFERENCES rollbacks (id),
    at          INTEGER NOT NULL,
    event       TEXT NOT NULL,
    detail      TEXT NOT NULL
);
CREATE INDEX rollback_events_rollback ON rollback_events (rollback_id, id);

CREATE TABLE audit_log (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at       INTEGER NOT NULL,
    actor    TEXT NOT NULL,
    action   TEXT NOT NULL,
    subject  TEXT NOT NULL,
    detail   TEXT NOT NULL,
    trace_id TEXT
);
CREATE INDEX audit_log_subject ON audit_log (subject, id);

-- Append-only: the application has no API to change history, and the
-- database refuses it too.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER rollback_events_no_update BEFORE UPDATE ON rollback_events
BEGIN
    SELECT RAISE(ABORT, 'rollback_events is append-only');
END;
CREATE TRIGGER rollback_events_no_delete BEFORE DELETE ON rollback_events
BEGIN
    SELECT RAISE(ABORT, 'rollback_events is append-only');
END;

CREATE TABLE jobs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    kind         TEXT NOT NULL,
    payload      TEXT NOT NULL,
    dedup_key    TEXT,
    state        TEXT NOT NULL DEFAULT 'queued',
    attempts     INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    run_at       INTEGER NOT NULL,
    locked_by    TEXT,
    locked_until INTEGER,
    last_error   TEXT,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
-- A dedup key is unique among live jobs only: once a job is done or dead,
-- the same work may be enqueued again.
CREATE UNIQUE INDEX jobs_dedup ON jobs (dedup_key) WHERE state IN ('queued', 'running');
CREATE INDEX jobs_due ON jobs (run_at, id) WHERE state IN ('queued', 'running');
CREATE INDEX jobs_locked_by ON jobs (locked_by) WHERE state = 'running';
