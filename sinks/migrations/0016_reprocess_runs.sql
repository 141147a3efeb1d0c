-- Reprocessing the raw archive (racelab reprocess): the archive read in fetch order, a page at a time (keyset on
-- this index), and one row per run holding its checkpoint, written in the same transaction as the page it ends,
-- so an interrupted run resumes after the last page that landed.

CREATE INDEX raw_archive_fetch_order_idx ON raw_archive (fetched_at, poll_id, body_sha256);

CREATE TABLE reprocess_runs (
    run_id          bigserial PRIMARY KEY,
    selection       jsonb NOT NULL,          -- {"from", "to", "kinds", "tracks"} as given
    started_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    total_responses bigint NOT NULL,         -- archived responses in the selection when the run started
    done_responses  bigint NOT NULL DEFAULT 0,
    after_fetched_at timestamptz,            -- the last response done (the keyset position)
    after_poll_id   text,
    after_sha256    bytea,
    report          jsonb NOT NULL DEFAULT '{}'  -- counts so far (rows inserted and columns changed per table)
);

CREATE INDEX reprocess_runs_open_idx ON reprocess_runs (selection) WHERE finished_at IS NULL;
