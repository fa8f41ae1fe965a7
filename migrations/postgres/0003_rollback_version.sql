-- Every write to a rollback row bumps `version`. Field-level statements
-- (branch and commit, pull request, merge commit) touch only their own
-- columns; approvals are changed by compare-and-set on `version`, so a
-- concurrent approval, PR number or branch is never overwritten.
ALTER TABLE rollbacks ADD COLUMN version BIGINT NOT NULL DEFAULT 0;

-- A dedup key is unique among *queued* jobs only. A queued job has not read
-- anything yet, so one is enough; a running job may have read the state
-- before the change that needs another run, so it must not swallow the
-- next one (every job is safe to run twice).
DROP INDEX jobs_dedup;
CREATE UNIQUE INDEX jobs_dedup ON jobs (dedup_key) WHERE state = 'queued';
