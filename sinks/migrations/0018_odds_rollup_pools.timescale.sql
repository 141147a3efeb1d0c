-- A licensed server keeps the continuous aggregate odds_daily_summary (0003); the Apache build's rollup table
-- changes shape in this version, and there is none here.
SELECT 1;
