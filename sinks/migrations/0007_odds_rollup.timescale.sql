-- A licensed server keeps the continuous aggregate odds_daily_summary (0003); the rollup table of the Apache
-- build is not needed here.
SELECT 1;
