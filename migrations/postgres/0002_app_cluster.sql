-- An app is identified by its name AND its cluster (the same Argo CD or
-- Flux name on two clusters is two apps). Every `app` column now holds the
-- app reference `name@cluster` (`@` cannot occur in either part), so every
-- existing unique index, the one-open-rollback partial index, the breaker
-- count and every lookup key by name and cluster without new composite
-- indexes. Keep in step with ../sqlite/0002_app_cluster.sql.
--
-- Existing data: the ledger kept one app per name, so all of an app's rows
-- move to that app's recorded cluster; an empty cluster (Flux without
-- `[[apps]].cluster`) or Argo CD's own `https://kubernetes.default.svc`
-- becomes `in-cluster`, the cluster of the sending instance.

ALTER TABLE apps RENAME COLUMN name TO app;
ALTER TABLE apps ADD COLUMN name TEXT NOT NULL DEFAULT '';
UPDATE apps SET name = app;
UPDATE apps SET cluster = 'in-cluster'
    WHERE cluster IS NULL OR TRIM(cluster) = '' OR cluster = 'https://kubernetes.default.svc';
UPDATE apps SET cluster = REPLACE(REPLACE(REPLACE(REPLACE(cluster, '@', '-'), ' ', '-'), chr(9), '-'), chr(10), '-');

-- Rows of an app that has no row (cannot happen through the application,
-- which creates a placeholder first) go to `in-cluster`.
UPDATE deployments SET cluster = COALESCE(
    (SELECT a.cluster FROM apps a WHERE a.name = deployments.app), 'in-cluster');
UPDATE deployments SET app = app || '@' || cluster;

UPDATE alerts SET cluster = COALESCE(
    (SELECT a.cluster FROM apps a WHERE a.name = alerts.app), 'in-cluster');
UPDATE alerts SET app = app || '@' || cluster;

UPDATE rollbacks SET
    from_doc = jsonb_set(from_doc, '{cluster}', to_jsonb(COALESCE(
        (SELECT a.cluster FROM apps a WHERE a.name = rollbacks.app), 'in-cluster'))),
    to_doc = jsonb_set(to_doc, '{cluster}', to_jsonb(COALESCE(
        (SELECT a.cluster FROM apps a WHERE a.name = rollbacks.app), 'in-cluster')));
UPDATE rollbacks SET app = app || '@' || COALESCE(
    (SELECT a.cluster FROM apps a WHERE a.name = rollbacks.app), 'in-cluster');

UPDATE apps SET app = name || '@' || cluster;
CREATE INDEX apps_name ON apps (name, cluster);

-- What the cluster reports (Argo CD `status.sync`, Flux revisions) and the
-- drift rewind derives from it: NULL while cluster and Git agree.
ALTER TABLE apps ADD COLUMN reported_sync TEXT;
ALTER TABLE apps ADD COLUMN reported_revision TEXT;
ALTER TABLE apps ADD COLUMN drift TEXT;
ALTER TABLE apps ADD COLUMN drift_since TIMESTAMPTZ;

-- `policy.trust_history`: known good because the history shows it ran
-- `healthy_for` before the next deployment with no alert, not because
-- rewind saw it healthy.
ALTER TABLE deployments ADD COLUMN known_good_by_history BOOLEAN NOT NULL DEFAULT FALSE;

-- Multi-cluster waves: a rollback's place in the plan, and `held` (a wave
-- member waiting for the one before it) counts as open.
ALTER TABLE rollbacks ADD COLUMN wave JSONB;
DROP INDEX rollbacks_one_open;
CREATE UNIQUE INDEX rollbacks_one_open ON rollbacks (app)
    WHERE state IN ('proposed', 'pr_open', 'approved', 'merged', 'synced', 'held');
