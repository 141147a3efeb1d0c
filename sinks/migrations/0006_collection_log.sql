-- One row per upstream call the producers made (scheduled polls, backfill, control-API triggers, failure retries),
-- successful or not: the control API's status reports collections, success rate and freshness per source, kind and
-- race day from it. A call that failed for good also has its row in ingestion_failures (the details and the retry
-- state live there); this table only records that it happened and when.
CREATE TABLE collection_log (
    id           bigserial PRIMARY KEY,
    collected_at timestamptz NOT NULL DEFAULT now(),
    source       text NOT NULL CHECK (source IN ('kra', 'kspo', 'simulator')),
    kind         text NOT NULL CHECK (kind IN ('schedules', 'entries', 'odds', 'results')),
    endpoint     text NOT NULL,
    message_key  text NOT NULL,
    -- the race day the call is about (from the message key), NULL when the key names no day
    race_date    date,
    ok           boolean NOT NULL,
    -- raw messages published (pages) and rows in them; 0 for a failed call
    pages        integer NOT NULL DEFAULT 0 CHECK (pages >= 0),
    items        integer NOT NULL DEFAULT 0 CHECK (items >= 0)
);
CREATE INDEX collection_log_day_idx ON collection_log (race_date, source, kind);
CREATE INDEX collection_log_recent_idx ON collection_log (collected_at DESC);
