-- Query indexes on a licensed server: nothing to rebuild. The .apache variant turns the unique key of
-- odds_snapshots into (race_id, time, pool, selection) INCLUDE (odds, is_final, pool_total, popularity_rank) so that
-- a race's history is an index-only scan in time order. Here TimescaleDB refuses CREATE UNIQUE INDEX once compression
-- is enabled (0003), and the history of any race older than the compression lag is read from compressed segments
-- (segmented by race_id, ordered by pool, selection, time), so the key stays as 0002 made it. odds_daily_summary is
-- the continuous aggregate: day summaries read materialized rows.
COMMENT ON INDEX odds_snapshots_key IS
    'idempotency key of odds_snapshots (race_id, pool, selection, time); see migration 0005 for the query indexes';
