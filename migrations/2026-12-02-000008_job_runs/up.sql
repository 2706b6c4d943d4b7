-- Scheduled job runs (pulse-scheduler, scheduler/src/runs.rs): one row per job and due time.
-- Every scheduler replica's cron stream fires at the same tick; each inserts its claim with
-- ON CONFLICT DO NOTHING before working, and only the replica whose insert went in runs the
-- tick (the others count it as skipped). The row then records how the run went, so it is also
-- the run history that `GET /jobs` reads.
CREATE TABLE job_runs (
    job          text NOT NULL,
    tick_at      timestamptz NOT NULL,
    replica      text NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    outcome      text NOT NULL DEFAULT 'running' CHECK (outcome IN ('running', 'ok', 'error')),
    error        text,
    summary      text,
    attempts     integer NOT NULL DEFAULT 0,
    duration_ms  bigint,
    PRIMARY KEY (job, tick_at)
);
