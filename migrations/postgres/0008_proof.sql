-- Proof of what runs: the images Argo CD reports running for a deployment
-- (status.summary.images; NULL when the controller reports none, as Flux),
-- and the one verification comment rewind keeps up to date on a rollback's
-- pull request (the forge's comment id, NULL until posted).
ALTER TABLE deployments ADD COLUMN running_images JSONB;
ALTER TABLE rollbacks ADD COLUMN verify_comment_id BIGINT;
