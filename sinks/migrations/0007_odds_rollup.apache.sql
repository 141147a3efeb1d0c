-- The day summary on the Apache build: a rollup table kept by the sink in the same transaction as the odds it
-- inserts (sinks/rollup.py), instead of aggregating a day's raw snapshots on every read. Same view name, columns and
-- types as before (and as the continuous aggregate of a licensed server), so queries do not change. Each snapshot is
-- counted once: only rows the sink actually inserted are rolled up, and a redelivered snapshot inserts nothing.
CREATE TABLE odds_daily_rollup (
    day        timestamptz      NOT NULL,
    race_id    text             NOT NULL,
    pool       text             NOT NULL,
    selection  text             NOT NULL,
    open_odds  double precision NOT NULL,
    close_odds double precision NOT NULL,
    high_odds  double precision NOT NULL,
    low_odds   double precision NOT NULL,
    snapshots  bigint           NOT NULL,
    first_at   timestamptz      NOT NULL,
    last_at    timestamptz      NOT NULL,
    PRIMARY KEY (day, race_id, pool, selection)
);

-- Existing snapshots, stored in key order so that a day's rows sit together on disk.
INSERT INTO odds_daily_rollup SELECT * FROM odds_daily_summary ORDER BY day, race_id, pool, selection;
ANALYZE odds_daily_rollup;

CREATE OR REPLACE VIEW odds_daily_summary AS
SELECT day, race_id, pool, selection, open_odds, close_odds, high_odds, low_odds, snapshots, first_at, last_at
FROM odds_daily_rollup;
