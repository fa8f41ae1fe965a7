-- In-cluster rollbacks (Flagger rolled a canary back, Argo Rollouts aborted
-- an update): the cluster runs something Git no longer says. The engine
-- proposes that Git catch up from these rows. Keep in step with
-- ../sqlite/0005_cluster_rollbacks.sql.

CREATE TABLE cluster_rollbacks (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    app               TEXT NOT NULL,
    cluster           TEXT NOT NULL DEFAULT '',
    namespace         TEXT NOT NULL,
    workload          TEXT NOT NULL,
    sender            TEXT NOT NULL,
    running_revision  TEXT,
    running_images    JSONB NOT NULL DEFAULT '[]',
    rejected_revision TEXT,
    rejected_images   JSONB NOT NULL DEFAULT '[]',
    message           TEXT NOT NULL,
    at                TIMESTAMPTZ NOT NULL,
    received_at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX cluster_rollbacks_app ON cluster_rollbacks (app, cluster, id);
