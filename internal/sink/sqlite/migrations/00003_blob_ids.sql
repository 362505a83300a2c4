-- +goose Up
-- Ids become 16-byte blobs (a UUID's bytes) instead of 36-character text:
-- the primary key's and the page index's entries halve, and upserts of new
-- users ran 7-62% faster, median 18% (BenchmarkKeyShape, docs/decisions.md).
-- Blobs compare as bytes, which is the order of the lower-case text, so
-- "ties by id" keeps its order. View users shows the table with text ids,
-- for the sqlite3 command line and other readers.
--
-- The table is rebuilt (SQLite cannot change a column's type): every row
-- keeps its rowid, which the counts of migration 00002 go by; the indexes
-- and the delete trigger are made again on the new table. goose runs this
-- file in one transaction.
CREATE TABLE created_users_new (
    id              BLOB PRIMARY KEY NOT NULL CHECK (typeof(id) = 'blob' AND length(id) = 16),
    first_name      TEXT NOT NULL,
    last_name       TEXT NOT NULL,
    gender          TEXT NOT NULL,
    address         TEXT NOT NULL,
    post_code       TEXT NOT NULL,
    email           TEXT NOT NULL,
    username        TEXT NOT NULL,
    dob             TEXT NOT NULL,
    registered_date TEXT NOT NULL,
    phone           TEXT NOT NULL,
    picture         TEXT NOT NULL,
    nat             TEXT NOT NULL DEFAULT '',
    ingested_at     TEXT,
    run_id          TEXT NOT NULL DEFAULT '',
    stored_at       TEXT NOT NULL,
    counted_nat     TEXT,
    CONSTRAINT first_name_len CHECK (length(CAST(first_name AS BLOB)) <= 512),
    CONSTRAINT last_name_len CHECK (length(CAST(last_name AS BLOB)) <= 512),
    CONSTRAINT gender_len CHECK (length(CAST(gender AS BLOB)) <= 512),
    CONSTRAINT address_len CHECK (length(CAST(address AS BLOB)) <= 512),
    CONSTRAINT post_code_len CHECK (length(CAST(post_code AS BLOB)) <= 512),
    CONSTRAINT email_len CHECK (length(CAST(email AS BLOB)) <= 512),
    CONSTRAINT username_len CHECK (length(CAST(username AS BLOB)) <= 512),
    CONSTRAINT phone_len CHECK (length(CAST(phone AS BLOB)) <= 512),
    CONSTRAINT picture_len CHECK (length(CAST(picture AS BLOB)) <= 512),
    CONSTRAINT nat_len CHECK (length(CAST(nat AS BLOB)) <= 512),
    CONSTRAINT run_id_len CHECK (length(CAST(run_id AS BLOB)) <= 512)
);

-- The sink stored ids in lower-case canonical form; another program's id
-- that is not a UUID's 36 characters fails the CHECK, and the migration
-- with it, rather than being stored as something else.
INSERT INTO created_users_new (rowid, id, first_name, last_name, gender, address, post_code, email,
    username, dob, registered_date, phone, picture, nat, ingested_at, run_id, stored_at, counted_nat)
SELECT rowid, CASE WHEN length(id) = 36 THEN unhex(replace(id, '-', '')) END, first_name, last_name, gender,
    address, post_code, email, username, dob, registered_date, phone, picture, nat, ingested_at, run_id,
    stored_at, counted_nat
FROM created_users ORDER BY rowid;

DROP TABLE created_users;
ALTER TABLE created_users_new RENAME TO created_users;

CREATE INDEX created_users_page ON created_users (ingested_at DESC, id);
CREATE INDEX created_users_moved ON created_users (nat, counted_nat) WHERE counted_nat IS NOT nat;

-- +goose StatementBegin
CREATE TRIGGER created_users_count_delete AFTER DELETE ON created_users
WHEN old.rowid <= (SELECT counted FROM user_counts_mark)
BEGIN
    UPDATE user_counts SET n = n - 1 WHERE nat = old.counted_nat;
    UPDATE user_counts_mark SET counted = min(counted, (SELECT coalesce(max(rowid), 0) FROM created_users));
END;
-- +goose StatementEnd

CREATE VIEW users AS
SELECT lower(substr(hex(id), 1, 8) || '-' || substr(hex(id), 9, 4) || '-' || substr(hex(id), 13, 4) || '-' ||
        substr(hex(id), 17, 4) || '-' || substr(hex(id), 21)) AS id,
    first_name, last_name, gender, address, post_code, email, username, dob, registered_date, phone,
    picture, nat, ingested_at, run_id, stored_at
FROM created_users;

-- +goose Down
DROP VIEW users;
CREATE TABLE created_users_old (
    id              TEXT PRIMARY KEY NOT NULL,
    first_name      TEXT NOT NULL,
    last_name       TEXT NOT NULL,
    gender          TEXT NOT NULL,
    address         TEXT NOT NULL,
    post_code       TEXT NOT NULL,
    email           TEXT NOT NULL,
    username        TEXT NOT NULL,
    dob             TEXT NOT NULL,
    registered_date TEXT NOT NULL,
    phone           TEXT NOT NULL,
    picture         TEXT NOT NULL,
    nat             TEXT NOT NULL DEFAULT '',
    ingested_at     TEXT,
    run_id          TEXT NOT NULL DEFAULT '',
    stored_at       TEXT NOT NULL,
    counted_nat     TEXT,
    CONSTRAINT first_name_len CHECK (length(CAST(first_name AS BLOB)) <= 512),
    CONSTRAINT last_name_len CHECK (length(CAST(last_name AS BLOB)) <= 512),
    CONSTRAINT gender_len CHECK (length(CAST(gender AS BLOB)) <= 512),
    CONSTRAINT address_len CHECK (length(CAST(address AS BLOB)) <= 512),
    CONSTRAINT post_code_len CHECK (length(CAST(post_code AS BLOB)) <= 512),
    CONSTRAINT email_len CHECK (length(CAST(email AS BLOB)) <= 512),
    CONSTRAINT username_len CHECK (length(CAST(username AS BLOB)) <= 512),
    CONSTRAINT phone_len CHECK (length(CAST(phone AS BLOB)) <= 512),
    CONSTRAINT picture_len CHECK (length(CAST(picture AS BLOB)) <= 512),
    CONSTRAINT nat_len CHECK (length(CAST(nat AS BLOB)) <= 512),
    CONSTRAINT run_id_len CHECK (length(CAST(run_id AS BLOB)) <= 512)
);
INSERT INTO created_users_old (rowid, id, first_name, last_name, gender, address, post_code, email,
    username, dob, registered_date, phone, picture, nat, ingested_at, run_id, stored_at, counted_nat)
SELECT rowid, lower(substr(hex(id), 1, 8) || '-' || substr(hex(id), 9, 4) || '-' || substr(hex(id), 13, 4) || '-' ||
        substr(hex(id), 17, 4) || '-' || substr(hex(id), 21)), first_name, last_name, gender, address, post_code,
    email, username, dob, registered_date, phone, picture, nat, ingested_at, run_id, stored_at, counted_nat
FROM created_users ORDER BY rowid;
DROP TABLE created_users;
ALTER TABLE created_users_old RENAME TO created_users;
CREATE INDEX created_users_page ON created_users (ingested_at DESC, id);
CREATE INDEX created_users_moved ON created_users (nat, counted_nat) WHERE counted_nat IS NOT nat;
-- +goose StatementBegin
CREATE TRIGGER created_users_count_delete AFTER DELETE ON created_users
WHEN old.rowid <= (SELECT counted FROM user_counts_mark)
BEGIN
    UPDATE user_counts SET n = n - 1 WHERE nat = old.counted_nat;
    UPDATE user_counts_mark SET counted = min(counted, (SELECT coalesce(max(rowid), 0) FROM created_users));
END;
-- +goose StatementEnd
