-- +goose Up
-- created_users holds one row per user id: every column of the pipeline's
-- record, plus stored_at, when this sink last wrote the row. dob and
-- registered_date stay text, exactly as the source sent them.
-- The text columns user.Validate limits to 512 bytes are checked here as
-- well: an over-long value fails its batch instead of being stored.
CREATE TABLE created_users (
    id              uuid PRIMARY KEY,
    first_name      text NOT NULL,
    last_name       text NOT NULL,
    gender          text NOT NULL,
    address         text NOT NULL,
    post_code       text NOT NULL,
    email           text NOT NULL,
    username        text NOT NULL,
    dob             text NOT NULL,
    registered_date text NOT NULL,
    phone           text NOT NULL,
    picture         text NOT NULL,
    nat             text NOT NULL DEFAULT '',
    ingested_at     timestamptz,
    run_id          text NOT NULL DEFAULT '',
    stored_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT first_name_len CHECK (octet_length(first_name) <= 512),
    CONSTRAINT last_name_len CHECK (octet_length(last_name) <= 512),
    CONSTRAINT gender_len CHECK (octet_length(gender) <= 512),
    CONSTRAINT address_len CHECK (octet_length(address) <= 512),
    CONSTRAINT post_code_len CHECK (octet_length(post_code) <= 512),
    CONSTRAINT email_len CHECK (octet_length(email) <= 512),
    CONSTRAINT username_len CHECK (octet_length(username) <= 512),
    CONSTRAINT phone_len CHECK (octet_length(phone) <= 512),
    CONSTRAINT picture_len CHECK (octet_length(picture) <= 512),
    CONSTRAINT nat_len CHECK (octet_length(nat) <= 512),
    CONSTRAINT run_id_len CHECK (octet_length(run_id) <= 512)
);

-- Recent: newest ingested first, rows without ingested_at last.
CREATE INDEX created_users_recent ON created_users (ingested_at DESC NULLS LAST, stored_at DESC);

-- +goose Down
DROP TABLE created_users;
