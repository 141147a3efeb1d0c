-- Horse and jockey profiles (KRA API8_2, API12_1): the newest version wins; career counters are snapshots of the
-- day they were fetched and stay in details.

CREATE TABLE horses (
    horse_id          text PRIMARY KEY,
    name              text NOT NULL,
    sex               text,
    birth_date        date,
    origin            text,
    grade             text,
    rating            smallint,
    sire_id           text,
    sire_name         text,
    dam_id            text,
    dam_name          text,
    trainer_id        text,
    trainer_name      text,
    owner_id          text,
    owner_name        text,
    career_prize_krw  bigint,
    track_code        text REFERENCES tracks (code),
    source            text NOT NULL CHECK (source IN ('kra', 'kspo')),
    source_fetched_at timestamptz,
    details           jsonb NOT NULL DEFAULT '{}',
    updated_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE jockeys (
    jockey_id         text PRIMARY KEY,
    name              text NOT NULL,
    age               smallint,
    birth_date        date,
    debut_date        date,
    track_code        text REFERENCES tracks (code),
    source            text NOT NULL CHECK (source IN ('kra', 'kspo')),
    source_fetched_at timestamptz,
    details           jsonb NOT NULL DEFAULT '{}',
    updated_at        timestamptz NOT NULL DEFAULT now()
);
