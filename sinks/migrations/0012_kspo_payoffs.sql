-- KSPO cycle payoffs: one race's dividends, placed by date, round, day of round and race number but not by track
-- (the rows do not name it). The sink attaches their fields to the details of the one cycle race they fit
-- (sinks/payoffs.py); a payoff that fits no race or races of several tracks stays here, listed by racelab audit.

CREATE TABLE kspo_payoffs (
    race_type         text NOT NULL CHECK (race_type IN ('cycle', 'boat')),
    race_date         date NOT NULL,
    race_no           smallint NOT NULL CHECK (race_no > 0),
    year              smallint NOT NULL,
    round_no          smallint NOT NULL CHECK (round_no > 0),
    day_no            smallint NOT NULL CHECK (day_no > 0),
    track_code        text REFERENCES tracks (code),
    source            text NOT NULL CHECK (source IN ('kra', 'kspo')),
    source_fetched_at timestamptz,
    details           jsonb NOT NULL DEFAULT '{}',
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (race_type, race_date, race_no, year, round_no, day_no)
);
