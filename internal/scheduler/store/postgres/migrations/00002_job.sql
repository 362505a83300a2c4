-- +goose Up
-- job: one row a scheduler process, as Airflow's job table keeps its
-- SchedulerJob: the others take a process whose latest_heartbeat stops
-- moving for dead and resolve the tries it was running.
CREATE TABLE job (
    id               text COLLATE "C" PRIMARY KEY,
    job_type         text NOT NULL DEFAULT 'SchedulerJob',
    hostname         text NOT NULL DEFAULT '',
    start_date       timestamptz,
    latest_heartbeat timestamptz
);

-- +goose Down
DROP TABLE job;
