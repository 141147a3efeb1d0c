-- State the producers keep so that restarts and several producer processes never poll the same slot twice.

-- Source-specific race attributes (KSPO: stnd_yr, week_tcnt, day_tcnt of the race day).
ALTER TABLE races ADD COLUMN details jsonb NOT NULL DEFAULT '{}';

-- One row per (task, target, slot) a producer claimed. A claim that was not completed within a few minutes
-- (the producer died) can be claimed again.
CREATE TABLE poll_slots (
    task       text NOT NULL,
    target     text NOT NULL,
    slot       timestamptz NOT NULL,
    claimed_at timestamptz NOT NULL DEFAULT now(),
    done       boolean NOT NULL DEFAULT false,
    outcome    text,
    PRIMARY KEY (task, target, slot)
);

-- A failed call keeps the topic and key its messages go to, so the recovery job can re-publish them.
ALTER TABLE ingestion_failures ADD COLUMN message_key text;

-- Backfill progress: one row per finished (job, day, track, kind) unit.
CREATE TABLE backfill_checkpoints (
    job_id   text NOT NULL,
    day      date NOT NULL,
    track    text NOT NULL,
    kind     text NOT NULL,
    messages integer NOT NULL,
    done_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, day, track, kind)
);
