-- Core relational tables. Race ids: {race_type}-{track_code}-{race_no}-{YYYYMMDD}, e.g. horse-seoul-3-20241210.
-- entries/results/odds may arrive before their race row, so they do not reference races(race_id); the sink
-- creates a placeholder race (status 'unknown') that a later schedule version fills in.

CREATE TABLE tracks (
    code        text PRIMARY KEY,
    name_ko     text NOT NULL,
    race_type   text NOT NULL CHECK (race_type IN ('horse', 'cycle', 'boat')),
    source      text NOT NULL CHECK (source IN ('kra', 'kspo')),
    kra_meet    smallint UNIQUE,
    aliases     text[] NOT NULL DEFAULT '{}'
);

INSERT INTO tracks (code, name_ko, race_type, source, kra_meet, aliases) VALUES
    ('seoul',       '서울',     'horse', 'kra',  1,    '{서울}'),
    ('jeju',        '제주',     'horse', 'kra',  2,    '{제주}'),
    ('busan',       '부산경남', 'horse', 'kra',  3,    '{부산경남,부경,영남}'),
    ('gwangmyeong', '광명',     'cycle', 'kspo', NULL, '{광명}'),
    ('changwon',    '창원',     'cycle', 'kspo', NULL, '{창원}'),
    ('busan_cycle', '부산',     'cycle', 'kspo', NULL, '{부산}'),
    ('misari',      '미사리',   'boat',  'kspo', NULL, '{미사리}');

CREATE TABLE races (
    race_id           text PRIMARY KEY,
    race_type         text NOT NULL CHECK (race_type IN ('horse', 'cycle', 'boat')),
    track_code        text NOT NULL REFERENCES tracks (code),
    race_date         date NOT NULL,
    race_no           smallint NOT NULL CHECK (race_no > 0),
    post_time         timestamptz,
    started_at        timestamptz,
    distance_m        integer,
    grade             text,
    race_name         text,
    field_size        smallint,
    status            text NOT NULL DEFAULT 'scheduled'
                      CHECK (status IN ('unknown', 'scheduled', 'finished', 'official', 'cancelled')),
    source            text NOT NULL CHECK (source IN ('kra', 'kspo')),
    source_fetched_at timestamptz,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (race_date, track_code, race_no, race_type)
);
CREATE INDEX races_post_time_idx ON races (post_time);

CREATE TABLE entries (
    race_id           text NOT NULL,
    entry_no          smallint NOT NULL CHECK (entry_no > 0),
    participant_id    text,
    participant_name  text NOT NULL,
    jockey_id         text,
    jockey_name       text,
    trainer_id        text,
    trainer_name      text,
    owner_id          text,
    owner_name        text,
    age               smallint,
    sex               text,
    carried_weight_kg real,
    body_weight_kg    smallint,
    body_weight_delta smallint,
    rating            smallint,
    grade             text,
    status            text NOT NULL DEFAULT 'declared' CHECK (status IN ('declared', 'scratched')),
    scratch_reason    text,
    details           jsonb NOT NULL DEFAULT '{}',
    source            text NOT NULL CHECK (source IN ('kra', 'kspo')),
    source_fetched_at timestamptz,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (race_id, entry_no)
);
CREATE INDEX entries_participant_idx ON entries (participant_id);
CREATE INDEX entries_jockey_idx ON entries (jockey_id);

CREATE TABLE results (
    race_id           text NOT NULL,
    entry_no          smallint NOT NULL CHECK (entry_no > 0),
    finish_position   smallint CHECK (finish_position > 0),
    status            text NOT NULL
                      CHECK (status IN ('finished', 'disqualified', 'did_not_finish', 'did_not_start',
                                        'scratched', 'void', 'cancelled')),
    status_code       smallint,
    finish_time_s     real,
    margin            text,
    participant_id    text,
    participant_name  text NOT NULL,
    jockey_id         text,
    jockey_name       text,
    win_odds          real,
    place_odds        real,
    is_final          boolean NOT NULL DEFAULT false,
    details           jsonb NOT NULL DEFAULT '{}',
    source            text NOT NULL CHECK (source IN ('kra', 'kspo')),
    source_fetched_at timestamptz,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (race_id, entry_no)
);
CREATE INDEX results_participant_idx ON results (participant_id);
CREATE INDEX results_jockey_idx ON results (jockey_id);

-- One row per call that still failed after its retries; repeated failures of the same call (same fingerprint)
-- update the open row instead of adding one.
CREATE TABLE ingestion_failures (
    id              bigserial PRIMARY KEY,
    source          text NOT NULL CHECK (source IN ('kra', 'kspo', 'simulator')),
    kind            text NOT NULL CHECK (kind IN ('schedules', 'entries', 'odds', 'results')),
    endpoint        text NOT NULL,
    params          jsonb NOT NULL DEFAULT '{}',
    fingerprint     text NOT NULL,
    error_code      text,
    error_class     text NOT NULL,
    error_message   text NOT NULL,
    http_status     smallint,
    attempts        integer NOT NULL CHECK (attempts > 0),
    occurrences     integer NOT NULL DEFAULT 1,
    first_failed_at timestamptz NOT NULL DEFAULT now(),
    last_failed_at  timestamptz NOT NULL DEFAULT now(),
    retry_count     integer NOT NULL DEFAULT 0,
    last_retry_at   timestamptz,
    resolved        boolean NOT NULL DEFAULT false,
    resolved_at     timestamptz
);
CREATE UNIQUE INDEX ingestion_failures_open_idx ON ingestion_failures (fingerprint) WHERE NOT resolved;
CREATE INDEX ingestion_failures_recent_idx ON ingestion_failures (resolved, last_failed_at DESC);
