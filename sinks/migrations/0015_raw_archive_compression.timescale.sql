-- Needs the Timescale License: bodies compress well (JSON and XML of the same endpoints); chunks older than 7 days.
ALTER TABLE raw_archive SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'endpoint',
    timescaledb.compress_orderby = 'fetched_at, poll_id'
);
SELECT add_compression_policy('raw_archive', INTERVAL '7 days');
