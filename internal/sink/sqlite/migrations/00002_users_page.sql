-- +goose Up
-- The web UI's Users page (sink.Browser).
--
-- Page and Recent walk created_users newest ingested first, ties by id, by
-- keyset: created_users_page is that order, so a page deep in a million
-- rows starts with one index seek, as the first page does. It replaces
-- created_users_recent (ingested_at, stored_at), so a write still updates
-- two indexes, not three. SQLite sorts NULL before every value, so under
-- DESC the users without ingested_at come last.
DROP INDEX created_users_recent;
CREATE INDEX created_users_page ON created_users (ingested_at DESC, id);

-- Stats and Count read user_counts, one row a nat: exact, and no scan.
-- A nat whose users all left keeps a row with n = 0 (Stats skips it).
--
-- Row triggers on INSERT and UPDATE would be the plain way, but they cost
-- every upsert 10-25% (measured while this was built). So:
--
-- * Inserts are counted by rowid. created_users is a rowid table: a new
--   row gets a rowid above every existing one, and an upsert that updates
--   keeps the row's rowid. Every row with rowid <= user_counts_mark.counted
--   is in user_counts; rows above it are not yet. The sink's Upsert counts
--   its new rows and moves the mark in its transaction; Stats and Count add
--   the rows above the mark as they read, so rows another program inserts
--   count too.
-- * A counted row is in user_counts under its counted_nat, which the
--   upsert sets on insert and never updates. A row whose nat changed since
--   (an upsert with another nat, or anyone's UPDATE) has nat IS NOT
--   counted_nat and so an entry in the partial index created_users_moved,
--   which costs the writes nothing else and is empty almost always.
--   Readers correct the counts by those rows; Upsert folds them into
--   user_counts (and sets their counted_nat) at the end of its transaction.
-- * A trigger on DELETE (which no upsert fires) takes a counted row out.
ALTER TABLE created_users ADD COLUMN counted_nat TEXT;
UPDATE created_users SET counted_nat = nat;
CREATE INDEX created_users_moved ON created_users (nat, counted_nat) WHERE counted_nat IS NOT nat;

CREATE TABLE user_counts (
    nat TEXT PRIMARY KEY NOT NULL,
    n   INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE user_counts_mark (
    one     INTEGER PRIMARY KEY CHECK (one = 1),
    counted INTEGER NOT NULL
);

-- A table from before this migration is counted once, here (goose runs
-- this file in one transaction).
INSERT INTO user_counts (nat, n) SELECT nat, count(*) FROM created_users GROUP BY nat;
INSERT INTO user_counts_mark (one, counted) SELECT 1, coalesce(max(rowid), 0) FROM created_users;

-- A counted row deleted leaves the counts; and the mark comes down to the
-- highest rowid left, so that a rowid SQLite gives again after the top row
-- went is above the mark, not taken for counted.
-- +goose StatementBegin
CREATE TRIGGER created_users_count_delete AFTER DELETE ON created_users
WHEN old.rowid <= (SELECT counted FROM user_counts_mark)
BEGIN
    UPDATE user_counts SET n = n - 1 WHERE nat = old.counted_nat;
    UPDATE user_counts_mark SET counted = min(counted, (SELECT coalesce(max(rowid), 0) FROM created_users));
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER created_users_count_delete;
DROP TABLE user_counts_mark;
DROP TABLE user_counts;
DROP INDEX created_users_moved;
ALTER TABLE created_users DROP COLUMN counted_nat;
DROP INDEX created_users_page;
CREATE INDEX created_users_recent ON created_users (ingested_at DESC, stored_at DESC);
