-- Needs the Timescale License (compression, continuous aggregates). The Apache build runs the .apache variant.
ALTER TABLE odds_snapshots SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'race_id',
    timescaledb.compress_orderby = 'pool, selection, time'
);
SELECT add_compression_policy('odds_snapshots', INTERVAL '7 days');

CREATE MATERIALIZED VIEW odds_daily_summary
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 day', time, 'Asia/Seoul') AS day,
       race_id,
       pool,
       selection,
       first(odds, time) AS open_odds,
       last(odds, time)  AS close_odds,
       max(odds)         AS high_odds,
       min(odds)         AS low_odds,
       count(*)          AS snapshots,
       min(time)         AS first_at,
       max(time)         AS last_at
FROM odds_snapshots
GROUP BY 1, race_id, pool, selection
WITH NO DATA;

SELECT add_continuous_aggregate_policy('odds_daily_summary',
    start_offset => INTERVAL '3 days', end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '15 minutes');
