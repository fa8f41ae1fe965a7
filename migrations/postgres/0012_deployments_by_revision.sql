-- A health report names the revision it is about; the ledger looks up the
-- newest deployment of the app with that revision. Without this index that
-- walked every deployment of the app (0.4 ms per report at 240 each on
-- PostgreSQL), the largest per-delivery cost of a group commit.
CREATE INDEX deployments_app_revision ON deployments (app, revision, cluster_revision);
