-- +goose Up
-- The scheduler's metadata, in Airflow's table and column names. Unset
-- times are NULL. Names and states sort byte-wise (COLLATE "C"), whatever
-- the database's collation, so lists come in the same order as from the
-- SQLite store. River's own tables (river_*) sit beside these, in the
-- same schema; River migrates them itself.

-- dag: what the store keeps of each DAG besides its definition.
CREATE TABLE dag (
    dag_id            text COLLATE "C" PRIMARY KEY,
    is_paused         boolean NOT NULL DEFAULT false,
    owner             text NOT NULL DEFAULT '',
    description       text NOT NULL DEFAULT '',
    schedule_interval text NOT NULL DEFAULT '',
    fileloc           text NOT NULL DEFAULT '',
    last_parsed_time  timestamptz,
    next_dagrun       timestamptz
);

-- dag_run: one row a run. The two unique keys are what keep two
-- schedulers from creating one run (or one slot) twice. A run without a
-- logical date (NULL) takes no slot: NULLs never collide. conf is json,
-- not jsonb, so that any JSON text a user triggers with is kept as sent.
CREATE TABLE dag_run (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dag_id              text COLLATE "C" NOT NULL,
    run_id              text COLLATE "C" NOT NULL,
    run_type            text COLLATE "C" NOT NULL DEFAULT '',
    logical_date        timestamptz,
    data_interval_start timestamptz,
    data_interval_end   timestamptz,
    state               text COLLATE "C" NOT NULL DEFAULT '',
    conf                json,
    external_trigger    boolean NOT NULL DEFAULT false,
    queued_at           timestamptz,
    start_date          timestamptz,
    end_date            timestamptz,
    note                text NOT NULL DEFAULT '',
    CONSTRAINT dag_run_dag_id_run_id_key UNIQUE (dag_id, run_id),
    CONSTRAINT dag_run_dag_id_logical_date_key UNIQUE (dag_id, logical_date)
);
CREATE INDEX dag_run_state ON dag_run (state);
CREATE INDEX dag_run_logical_date ON dag_run (logical_date);

-- task_instance_try: every try of every task instance (Airflow's
-- task_instance is the latest of them). Deleting a run deletes its tries.
CREATE TABLE task_instance_try (
    dag_id      text COLLATE "C" NOT NULL,
    run_id      text COLLATE "C" NOT NULL,
    task_id     text COLLATE "C" NOT NULL,
    try_number  integer NOT NULL,
    max_tries   integer NOT NULL DEFAULT 0,
    state       text COLLATE "C" NOT NULL DEFAULT '',
    start_date  timestamptz,
    end_date    timestamptz,
    hostname    text NOT NULL DEFAULT '',
    error       text NOT NULL DEFAULT '',
    job_id      bigint NOT NULL DEFAULT 0,
    queued_at   timestamptz,
    PRIMARY KEY (dag_id, run_id, task_id, try_number),
    FOREIGN KEY (dag_id, run_id) REFERENCES dag_run (dag_id, run_id) ON DELETE CASCADE
);
CREATE INDEX task_instance_try_state ON task_instance_try (state);

-- task_log: a try's log as the chunks appended to it, in id order.
-- Appending inserts a row instead of rewriting a growing text.
CREATE TABLE task_log (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dag_id     text COLLATE "C" NOT NULL,
    run_id     text COLLATE "C" NOT NULL,
    task_id    text COLLATE "C" NOT NULL,
    try_number integer NOT NULL,
    text       text NOT NULL,
    FOREIGN KEY (dag_id, run_id, task_id, try_number)
        REFERENCES task_instance_try (dag_id, run_id, task_id, try_number) ON DELETE CASCADE
);
CREATE INDEX task_log_try ON task_log (dag_id, run_id, task_id, try_number, id);

-- ab_user: logins of the REST API and the web UI (Airflow's FAB table).
CREATE TABLE ab_user (
    name          text COLLATE "C" PRIMARY KEY,
    role          text NOT NULL,
    password_hash text NOT NULL
);

-- +goose Down
DROP TABLE ab_user;
DROP TABLE task_log;
DROP TABLE task_instance_try;
DROP TABLE dag_run;
DROP TABLE dag;
