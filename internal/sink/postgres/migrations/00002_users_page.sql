-- +goose Up
-- The web UI's Users page (sink.Browser).
--
-- Page and Recent walk created_users newest ingested first, ties by id,
-- users without ingested_at last, by keyset: created_users_page is that
-- order, so a page deep in a million rows starts with one index descent,
-- as the first page does. It replaces created_users_recent (ingested_at,
-- stored_at), so a write still updates two indexes, not three. Building it
-- locks writes out for the build (seconds on a million rows).
DROP INDEX created_users_recent;
CREATE INDEX created_users_page ON created_users (ingested_at DESC NULLS LAST, id);

-- Stats and Count read user_counts: rows of (nat, n) whose sums by nat are
-- the numbers of users, kept exact by the triggers below in the writing
-- transaction. The table is append-only for writers: each statement adds
-- a row a nat it inserted (a row a user it moved), and takes no lock on a
-- shared row, so concurrent stream workers neither wait for each other nor
-- deadlock on the counts (an INSERT ... ON CONFLICT fires an INSERT and an
-- UPDATE trigger, which would take count-row locks in two rounds). The
-- sink compacts the rows now and then (Sink.compact), so they stay few.
CREATE TABLE user_counts (
    nat text NOT NULL,
    n   bigint NOT NULL
);

-- +goose StatementBegin
CREATE FUNCTION user_counts_insert() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO user_counts (nat, n) SELECT nat, count(*) FROM new_rows GROUP BY nat;
    RETURN NULL;
END $$;
-- +goose StatementEnd

-- A user whose nat changes moves between counts. This one is a row
-- trigger with a WHEN: PostgreSQL evaluates the condition for each updated
-- row without calling the function or queueing an event, so a replay (the
-- same nats) costs next to nothing, where a statement trigger would have
-- to keep every updated row twice in its transition tables (-13% on
-- replays of 5000, measured while this was built).
-- +goose StatementBegin
CREATE FUNCTION user_counts_update() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO user_counts (nat, n) VALUES (OLD.nat, -1), (NEW.nat, 1);
    RETURN NULL;
END $$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION user_counts_delete() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO user_counts (nat, n) SELECT nat, -count(*) FROM old_rows GROUP BY nat;
    RETURN NULL;
END $$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION user_counts_truncate() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    DELETE FROM user_counts;
    RETURN NULL;
END $$;
-- +goose StatementEnd

-- The functions name user_counts unqualified and keep the search_path of
-- this migration (the sink's schema=...), so a writer with another
-- search_path (psql) still counts into this schema's table.
CREATE TRIGGER created_users_count_insert AFTER INSERT ON created_users
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION user_counts_insert();
CREATE TRIGGER created_users_count_update AFTER UPDATE ON created_users
    FOR EACH ROW WHEN (OLD.nat IS DISTINCT FROM NEW.nat) EXECUTE FUNCTION user_counts_update();
CREATE TRIGGER created_users_count_delete AFTER DELETE ON created_users
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION user_counts_delete();
CREATE TRIGGER created_users_count_truncate AFTER TRUNCATE ON created_users
    FOR EACH STATEMENT EXECUTE FUNCTION user_counts_truncate();

-- A table from before this migration is counted once, here, after the
-- triggers: CREATE TRIGGER locked writers out until this transaction
-- commits, so no write falls between the count and the triggers.
INSERT INTO user_counts (nat, n) SELECT nat, count(*) FROM created_users GROUP BY nat;

-- +goose Down
DROP TRIGGER created_users_count_truncate ON created_users;
DROP TRIGGER created_users_count_delete ON created_users;
DROP TRIGGER created_users_count_update ON created_users;
DROP TRIGGER created_users_count_insert ON created_users;
DROP FUNCTION user_counts_truncate();
DROP FUNCTION user_counts_delete();
DROP FUNCTION user_counts_update();
DROP FUNCTION user_counts_insert();
DROP TABLE user_counts;
DROP INDEX created_users_page;
CREATE INDEX created_users_recent ON created_users (ingested_at DESC NULLS LAST, stored_at DESC);
