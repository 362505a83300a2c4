-- +goose Up
-- The Users page's run filter (sink.PageQuery.Run): a run's users in the
-- page's order, so a page of one run among a million users is one index
-- descent, not a walk of created_users_page that skips the other runs'.
CREATE INDEX created_users_run ON created_users (run_id, ingested_at DESC, id);

-- +goose Down
DROP INDEX created_users_run;
