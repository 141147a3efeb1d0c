-- KSPO finishers by racer (the RANK APIs): racer id, name and finishing position, without the entry number. The sink
-- joins them to the race's entries by name after every write that touches either (sinks/ranks.py): a joined racer
-- gets its result row and its id on the entry and the result; a racer missing from a present card is reported
-- (reported_at) as a dead letter once.

CREATE TABLE race_ranks (
    race_id           text NOT NULL,
    racer_id          text NOT NULL,
    racer_name        text NOT NULL,
    finish_position   smallint NOT NULL CHECK (finish_position > 0),
    details           jsonb NOT NULL DEFAULT '{}',
    source            text NOT NULL CHECK (source IN ('kra', 'kspo')),
    source_fetched_at timestamptz,
    reported_at       timestamptz,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (race_id, racer_id)
);
CREATE INDEX race_ranks_racer_idx ON race_ranks (racer_id);

ALTER TABLE entries
    ADD COLUMN gear_ratio   real CHECK (gear_ratio > 0),
    ADD COLUMN recent_ranks text[];
CREATE INDEX entries_name_idx ON entries (race_id, participant_name);
