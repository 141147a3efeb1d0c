-- The continuous aggregate's refresh policy of 0003 covered only the last three days: days older than that which
-- the policy never materialized (a backfill of last year, a late correction) would have dropped out of
-- odds_daily_summary once its watermark passed them. With no start offset, every run refreshes the regions of the
-- whole history that changed since the last run (TimescaleDB tracks the invalidated ranges), so backfilled days
-- appear within one schedule interval and an unchanged past costs nothing.
SELECT remove_continuous_aggregate_policy('odds_daily_summary', if_exists => true);
SELECT add_continuous_aggregate_policy('odds_daily_summary',
    start_offset => NULL, end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '15 minutes');
