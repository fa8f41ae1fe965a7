-- Per-app serialization of jobs across replicas: a worker runs a job that
-- concerns an app (a deployment to resolve, an alert, a rollback step, a
-- forge event on a rollback's PR) only while it holds that app's row here.
-- The row is taken in the claim's transaction (INSERT ... ON CONFLICT DO
-- UPDATE only when the holder's lease expired), renewed with the job's
-- lease and deleted when the job completes, fails or is released; so two
-- replicas never work on one app at once, and a dead replica's hold ends
-- with its lease. Keep in step with ../postgres/0009_app_locks.sql.
CREATE TABLE app_locks (
    app          TEXT PRIMARY KEY NOT NULL,
    job_id       INTEGER NOT NULL,
    locked_by    TEXT NOT NULL,
    locked_until INTEGER NOT NULL
);
CREATE INDEX app_locks_job ON app_locks (job_id);
