-- The raw archive (compressed by 0015 where the license allows): every raw message as
-- received (body bytes, every header, topic/partition/offset, key), stored once by the archiver's own consumer
-- group. A message is the same message when its poll, fetch time and body are the same (a redelivery, or a replay
-- of a dead letter with its original headers): the unique key.

CREATE TABLE raw_archive (
    fetched_at    timestamptz NOT NULL,
    poll_id       text NOT NULL,
    body_sha256   bytea NOT NULL,
    topic         text NOT NULL,
    msg_partition integer NOT NULL,
    msg_offset    bigint NOT NULL,
    message_key   text,
    source        text,
    kind          text,
    endpoint      text,
    params        jsonb,
    http_status   smallint,
    headers       jsonb NOT NULL,
    body          bytea NOT NULL,
    archived_at   timestamptz NOT NULL DEFAULT now()
);

SELECT create_hypertable('raw_archive', 'fetched_at', chunk_time_interval => INTERVAL '7 days',
                         create_default_indexes => false);

CREATE UNIQUE INDEX raw_archive_key ON raw_archive (poll_id, body_sha256, fetched_at);
CREATE INDEX raw_archive_message_key_idx ON raw_archive (message_key, fetched_at);
CREATE INDEX raw_archive_poll_idx ON raw_archive (poll_id);
