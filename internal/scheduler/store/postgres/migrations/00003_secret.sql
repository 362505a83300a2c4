-- +goose Up
-- secret: the install's secrets, created once by the first process that
-- needs them (the key that signs and checks the login tokens, so every
-- process on this store accepts the others').
CREATE TABLE secret (
    name  TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);

-- +goose Down
DROP TABLE secret;
