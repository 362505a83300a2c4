-- +goose Up
-- created_users holds one row per user id: every column of the pipeline's
-- record, plus stored_at, when this sink last wrote the row. Timestamps are
-- UTC text with nine fraction digits, so text order is time order. A rowid
-- table (not WITHOUT ROWID): rows of ~400 bytes with random UUID keys insert
-- faster appended in rowid order with a separate key index.
-- The text columns user.Validate limits to 512 bytes are checked here as
-- well: an over-long value fails its batch instead of being stored.
CREATE TABLE created_users (
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

-- Recent: newest ingested first, rows without ingested_at last.
CREATE INDEX created_users_recent ON created_users (ingested_at DESC, stored_at DESC);

-- +goose Down
DROP TABLE created_users;
