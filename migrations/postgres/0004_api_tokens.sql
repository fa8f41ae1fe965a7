-- API tokens made with `rewind token create` (or POST /api/v1/tokens), web UI
-- sessions, and two audit columns the audit endpoint filters on.
--
-- Only SHA-256 digests of tokens and session ids are stored: reading the
-- database does not give anyone a credential.
CREATE TABLE api_tokens (
    name       TEXT PRIMARY KEY,
    role       TEXT NOT NULL,
    digest     TEXT NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL,
    created_by TEXT NOT NULL
);

-- A web UI session: the cookie holds a random id, never the token. The
-- session points at the digest of the token that signed in, so revoking or
-- removing that token ends the session at once.
CREATE TABLE ui_sessions (
    digest       TEXT PRIMARY KEY,
    token_digest TEXT NOT NULL,
    csrf         TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX ui_sessions_expires ON ui_sessions (expires_at);
CREATE INDEX ui_sessions_token ON ui_sessions (token_digest);

-- The app an audit entry is about and the path it came through (api, ui,
-- github, ...), filled in on append; NULL on entries written before.
ALTER TABLE audit_log ADD COLUMN app TEXT;
ALTER TABLE audit_log ADD COLUMN via TEXT;
CREATE INDEX audit_log_app ON audit_log (app, id);
CREATE INDEX audit_log_actor ON audit_log (actor, id);
