-- fieldgate schema for PostgreSQL (tests, and users without CrateDB).
-- The DML fieldgate runs is the same as on CrateDB; only this DDL differs. Timestamps are written with
-- millisecond precision (CrateDB's), and month is a generated column kept in the primary key, as CrateDB needs
-- its partition column there.

-- One row per distinct reading, identity (device, metric, ts). value holds float and int readings as a double
-- (NULL for bool and string); value_text holds the exact int, bool or string value ("42", "true", "open").
CREATE TABLE IF NOT EXISTS readings (
    device       TEXT             NOT NULL,
    metric       TEXT             NOT NULL,
    ts           TIMESTAMPTZ      NOT NULL,
    kind         TEXT             NOT NULL,
    value        DOUBLE PRECISION,
    value_text   TEXT,
    quality      TEXT             NOT NULL,
    status       BIGINT           NOT NULL,
    source_time  TIMESTAMPTZ,
    gateway_time TIMESTAMPTZ      NOT NULL,
    gateway      TEXT,
    month        TIMESTAMP GENERATED ALWAYS AS (date_trunc('month', ts AT TIME ZONE 'UTC')) STORED,
    PRIMARY KEY (device, metric, ts, month)
);

-- Tumbling windows of 1m, [window_start, window_end), aligned to the epoch.
CREATE TABLE IF NOT EXISTS readings_1m (
    device        TEXT             NOT NULL,
    metric        TEXT             NOT NULL,
    window_start  TIMESTAMPTZ      NOT NULL,
    window_end    TIMESTAMPTZ      NOT NULL,
    count_all     BIGINT           NOT NULL,
    count_bad     BIGINT           NOT NULL,
    count_numeric BIGINT           NOT NULL,
    value_min     DOUBLE PRECISION,
    value_max     DOUBLE PRECISION,
    value_sum     DOUBLE PRECISION,
    value_mean    DOUBLE PRECISION,
    value_first   DOUBLE PRECISION,
    value_last    DOUBLE PRECISION,
    last_text     TEXT,
    time_first    TIMESTAMPTZ,
    time_last     TIMESTAMPTZ,
    is_final      BOOLEAN          NOT NULL,
    updated_at    TIMESTAMPTZ      NOT NULL,
    month         TIMESTAMP GENERATED ALWAYS AS (date_trunc('month', window_start AT TIME ZONE 'UTC')) STORED,
    PRIMARY KEY (device, metric, window_start, month)
);

-- Tumbling windows of 1h, [window_start, window_end), aligned to the epoch.
CREATE TABLE IF NOT EXISTS readings_1h (
    device        TEXT             NOT NULL,
    metric        TEXT             NOT NULL,
    window_start  TIMESTAMPTZ      NOT NULL,
    window_end    TIMESTAMPTZ      NOT NULL,
    count_all     BIGINT           NOT NULL,
    count_bad     BIGINT           NOT NULL,
    count_numeric BIGINT           NOT NULL,
    value_min     DOUBLE PRECISION,
    value_max     DOUBLE PRECISION,
    value_sum     DOUBLE PRECISION,
    value_mean    DOUBLE PRECISION,
    value_first   DOUBLE PRECISION,
    value_last    DOUBLE PRECISION,
    last_text     TEXT,
    time_first    TIMESTAMPTZ,
    time_last     TIMESTAMPTZ,
    is_final      BOOLEAN          NOT NULL,
    updated_at    TIMESTAMPTZ      NOT NULL,
    month         TIMESTAMP GENERATED ALWAYS AS (date_trunc('month', window_start AT TIME ZONE 'UTC')) STORED,
    PRIMARY KEY (device, metric, window_start, month)
);

-- Kafka records that could not be loaded: undecodable, an unknown format version, or refused by the database.
-- payload is the record value, base64-encoded (CrateDB has no byte array type).
CREATE TABLE IF NOT EXISTS dead_letters (
    kafka_topic     TEXT        NOT NULL,
    kafka_partition INTEGER     NOT NULL,
    kafka_offset    BIGINT      NOT NULL,
    reason          TEXT        NOT NULL,
    payload         TEXT        NOT NULL,
    received_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (kafka_topic, kafka_partition, kafka_offset)
);

-- The consumer's window state per Kafka partition (window.Checkpoint as JSON), written before the partition's
-- offset is committed, read when the partition is assigned: a replay then knows which windows were final.
CREATE TABLE IF NOT EXISTS checkpoints (
    consumer_group  TEXT        NOT NULL,
    kafka_topic     TEXT        NOT NULL,
    kafka_partition INTEGER     NOT NULL,
    checkpoint      TEXT        NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (consumer_group, kafka_topic, kafka_partition)
);
