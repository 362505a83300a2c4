-- +goose Up
-- job: one row a scheduler process, as Airflow's job table keeps its
-- SchedulerJob: the others take a process whose latest_heartbeat stops
-- moving for dead and resolve the tries it was running.
CREATE TABLE job (
    id               TEXT PRIMARY KEY NOT NULL,
    job_type         TEXT NOT NULL DEFAULT 'SchedulerJob',
    hostname         TEXT NOT NULL DEFAULT '',
    start_date       TEXT,
    latest_heartbeat TEXT
);

-- +goose Down
DROP TABLE job;
