-- The Apache build has no compression: the raw archive stays uncompressed (the .timescale variant compresses
-- chunks older than 7 days).
SELECT 1;
