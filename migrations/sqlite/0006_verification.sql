-- Verification: every evaluation of a check on a rollback, and the values
-- it is compared with (baseline while the alert fired, the known-good
-- window). Append-only; the result is a JSON document
-- {check, at, value, baseline, pass, detail}.
CREATE TABLE rollback_checks (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    rollback_id TEXT NOT NULL REFERENCES rollbacks (id),
    phase       TEXT NOT NULL,
    check_name  TEXT NOT NULL,
    at          INTEGER NOT NULL,
    result      TEXT NOT NULL
);
CREATE INDEX rollback_checks_rollback ON rollback_checks (rollback_id, phase, id);
