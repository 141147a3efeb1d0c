-- "Collected but not stored": when the sink last stored rows of each source and kind (one row each, updated after
-- every batch), and the poll id of every collection, so that what the producers published can be counted against
-- what the raw archive holds (a broker that lost messages it acknowledged; the local broker keeps them in memory).
CREATE TABLE landings (
    source    text NOT NULL,
    kind      text NOT NULL CHECK (kind IN ('schedules', 'entries', 'odds', 'results')),
    landed_at timestamptz NOT NULL,
    PRIMARY KEY (source, kind)
);

ALTER TABLE collection_log ADD COLUMN poll_id text;
-- from the first try to publish the pages to the broker's acknowledgement (a broker outage: the pages were kept)
ALTER TABLE collection_log ADD COLUMN publish_seconds real;
-- the oldest collection with items after a source's last landing, found without a scan
CREATE INDEX collection_log_items_idx ON collection_log (source, kind, collected_at) WHERE ok AND items > 0;
CREATE INDEX collection_log_poll_idx ON collection_log (poll_id) WHERE poll_id IS NOT NULL;
