-- Version 2 of the records: what the KRA result and entry APIs publish beyond the first columns (additive: every
-- existing row keeps its values, the new columns start empty), and the track 영천 (KRA meet 4, in the newer
-- datasets).

INSERT INTO tracks (code, name_ko, race_type, source, kra_meet, aliases) VALUES
    ('yeongcheon',  '영천',     'horse', 'kra',  4,    '{영천}')
ON CONFLICT (code) DO NOTHING;

ALTER TABLE races
    ADD COLUMN age_condition      text,
    ADD COLUMN sex_condition      text,
    ADD COLUMN prize_condition    text,
    ADD COLUMN weight_rule        text,
    ADD COLUMN prize_money_krw    bigint[],
    ADD COLUMN bonus_money_krw    bigint[],
    ADD COLUMN weather            text,
    ADD COLUMN track_condition    text,
    ADD COLUMN track_moisture_pct smallint CHECK (track_moisture_pct BETWEEN 0 AND 100);

ALTER TABLE results
    ADD COLUMN trainer_id          text,
    ADD COLUMN trainer_name        text,
    ADD COLUMN owner_id            text,
    ADD COLUMN owner_name          text,
    ADD COLUMN age                 smallint,
    ADD COLUMN sex                 text,
    ADD COLUMN rating              smallint,
    ADD COLUMN carried_weight_kg   real,
    ADD COLUMN jockey_allowance_kg real,
    ADD COLUMN body_weight_kg      smallint,
    ADD COLUMN body_weight_delta   smallint,
    ADD COLUMN equipment           text,
    ADD COLUMN sectionals          jsonb,
    ADD COLUMN split_times         jsonb;

CREATE INDEX results_trainer_idx ON results (trainer_id);
