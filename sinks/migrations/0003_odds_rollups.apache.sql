-- Apache-licensed TimescaleDB: no compression and no continuous aggregates. The same summary is a plain view
-- over the hypertable, with the same name and columns, so queries do not change.
CREATE VIEW odds_daily_summary AS
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
GROUP BY 1, race_id, pool, selection;
