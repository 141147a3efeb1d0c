-- The KSPO calendar: date <-> (year, round, day of round) per track, as the APIs published it (cycle entry sheets'
-- race_ymd, the rank APIs' race_day, boat payoffs' race_ymd). The producers plan every KSPO call from it; nothing
-- here is computed from weekdays or week numbers.

CREATE TABLE kspo_calendar (
    race_type    text NOT NULL CHECK (race_type IN ('cycle', 'boat')),
    track_code   text NOT NULL REFERENCES tracks (code),
    race_date    date NOT NULL,
    year         smallint NOT NULL,
    round_no     smallint NOT NULL CHECK (round_no > 0),
    day_no       smallint NOT NULL CHECK (day_no > 0),
    learned_from text NOT NULL,
    learned_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (track_code, race_date),
    UNIQUE (track_code, year, round_no, day_no)
);
