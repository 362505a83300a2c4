-- +goose Up
-- The scheduler's metadata, in Airflow's table and column names. Times are
-- UTC text with six fraction digits (NULL: not set), so text order is time
-- order and the columns sort and compare in SQL. River's own tables
-- (river_*) sit beside these; River migrates them itself.

-- dag: what the store keeps of each DAG besides its definition.
CREATE TABLE dag (
    dag_id            TEXT PRIMARY KEY NOT NULL,
    is_paused         INTEGER NOT NULL DEFAULT 0,
    owner             TEXT NOT NULL DEFAULT '',
    description       TEXT NOT NULL DEFAULT '',
    schedule_interval TEXT NOT NULL DEFAULT '',
    fileloc           TEXT NOT NULL DEFAULT '',
    last_parsed_time  TEXT,
    next_dagrun       TEXT
);

-- dag_run: one row a run. The two unique keys are what keep two
-- schedulers from creating one run (or one slot) twice. A run without a
-- logical date (NULL) takes no slot: NULLs never collide.
CREATE TABLE dag_run (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    dag_id              TEXT NOT NULL,
    run_id              TEXT NOT NULL,
    run_type            TEXT NOT NULL DEFAULT '',
    logical_date        TEXT,
    data_interval_start TEXT,
    data_interval_end   TEXT,
    state               TEXT NOT NULL DEFAULT '',
    conf                TEXT,
    external_trigger    INTEGER NOT NULL DEFAULT 0,
    queued_at           TEXT,
    start_date          TEXT,
    end_date            TEXT,
    note                TEXT NOT NULL DEFAULT '',
    CONSTRAINT dag_run_dag_id_run_id_key UNIQUE (dag_id, run_id),
    CONSTRAINT dag_run_dag_id_logical_date_key UNIQUE (dag_id, logical_date)
);
CREATE INDEX dag_run_state ON dag_run (state);
CREATE INDEX dag_run_logical_date ON dag_run (logical_date);

-- task_instance_try: every try of every task instance (Airflow's
-- task_instance is the latest of them). Deleting a run deletes its tries.
CREATE TABLE task_instance_try (
    dag_id      TEXT NOT NULL,
    run_id      TEXT NOT NULL,
    task_id     TEXT NOT NULL,
    try_number  INTEGER NOT NULL,
    max_tries   INTEGER NOT NULL DEFAULT 0,
    state       TEXT NOT NULL DEFAULT '',
    start_date  TEXT,
    end_date    TEXT,
    hostname    TEXT NOT NULL DEFAULT '',
    error       TEXT NOT NULL DEFAULT '',
    job_id      INTEGER NOT NULL DEFAULT 0,
    queued_at   TEXT,
    PRIMARY KEY (dag_id, run_id, task_id, try_number),
    FOREIGN KEY (dag_id, run_id) REFERENCES dag_run (dag_id, run_id) ON DELETE CASCADE
);
CREATE INDEX task_instance_try_state ON task_instance_try (state);

-- task_log: a try's log as the chunks appended to it, in id order.
-- Appending inserts a row instead of rewriting a growing text.
CREATE TABLE task_log (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    dag_id     TEXT NOT NULL,
    run_id     TEXT NOT NULL,
    task_id    TEXT NOT NULL,
    try_number INTEGER NOT NULL,
    text       TEXT NOT NULL,
    FOREIGN KEY (dag_id, run_id, task_id, try_number)
        REFERENCES task_instance_try (dag_id, run_id, task_id, try_number) ON DELETE CASCADE
);
CREATE INDEX task_log_try ON task_log (dag_id, run_id, task_id, try_number, id);

-- ab_user: logins of the REST API and the web UI (Airflow's FAB table).
CREATE TABLE ab_user (
    name          TEXT PRIMARY KEY NOT NULL,
    role          TEXT NOT NULL,
    password_hash TEXT NOT NULL
);

-- +goose Down
DROP TABLE ab_user;
DROP TABLE task_log;
DROP TABLE task_instance_try;
DROP TABLE dag_run;
DROP TABLE dag;
