-- Odds in long form: one row per (race, pool, selection, time). Unordered pools (QNL, QPL, TLA) store their
-- selection sorted ('3-7'); ordered pools (EXA, TRI) keep the order. The unique key includes time, so every
-- write is idempotent (ON CONFLICT DO NOTHING), and it leads with race_id, so it also serves per-race history.

CREATE TABLE odds_snapshots (
    time            timestamptz NOT NULL,
    race_id         text NOT NULL,
    pool            text NOT NULL CHECK (pool IN ('WIN', 'PLC', 'QNL', 'EXA', 'QPL', 'TLA', 'TRI')),
    selection       text NOT NULL CHECK (selection ~ '^[0-9]{1,2}(-[0-9]{1,2}){0,2}$'),
    odds            double precision NOT NULL CHECK (odds >= 0),
    is_final        boolean NOT NULL DEFAULT false,
    pool_total      bigint,
    popularity_rank smallint,
    source          text NOT NULL CHECK (source IN ('kra', 'kspo', 'simulator'))
);

SELECT create_hypertable('odds_snapshots', 'time', chunk_time_interval => INTERVAL '1 day',
                         create_default_indexes => false);

CREATE UNIQUE INDEX odds_snapshots_key ON odds_snapshots (race_id, pool, selection, time);

-- The wide shape of the original data model: one row per runner and time with win and place odds.
CREATE VIEW odds_snapshots_wide AS
SELECT time,
       race_id,
       selection::smallint                        AS entry_no,
       max(odds) FILTER (WHERE pool = 'WIN')      AS odds_win,
       max(odds) FILTER (WHERE pool = 'PLC')      AS odds_place
FROM odds_snapshots
WHERE pool IN ('WIN', 'PLC')
GROUP BY time, race_id, selection;
