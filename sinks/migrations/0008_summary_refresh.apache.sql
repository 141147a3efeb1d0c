-- Apache build: odds_daily_summary is a view over the rollup table the sink keeps (0007); there is no refresh
-- policy to change. The .timescale variant widens the continuous aggregate's refresh window to the whole history.
SELECT 1;
