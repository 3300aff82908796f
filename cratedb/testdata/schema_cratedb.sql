-- fieldgate schema for CrateDB. Requires CrateDB 5.x or later; TIMESTAMP WITH TIME ZONE columns throughout
-- (pgx and Grafana read them on every version). Tables are partitioned by a generated month column, which is
-- part of every primary key as CrateDB requires; fieldgate never updates key or partition columns.
-- Shards per partition: 6 (database.shards in the central configuration).

-- One row per distinct reading, identity (device, metric, ts). value holds float and int readings as a double
-- (NULL for bool and string); value_text holds the exact int, bool or string value ("42", "true", "open").
CREATE TABLE IF NOT EXISTS readings (
    device       TEXT                     NOT NULL,
    metric       TEXT                     NOT NULL,
    ts           TIMESTAMP WITH TIME ZONE NOT NULL,
    kind         TEXT                     NOT NULL,
    value        DOUBLE PRECISION,
    value_text   TEXT INDEX OFF STORAGE WITH (columnstore = false),
    quality      TEXT                     NOT NULL,
    status       BIGINT                   NOT NULL,
    source_time  TIMESTAMP WITH TIME ZONE,
    gateway_time TIMESTAMP WITH TIME ZONE NOT NULL,
    gateway      TEXT,
    month        TIMESTAMP WITH TIME ZONE GENERATED ALWAYS AS date_trunc('month', ts),
    PRIMARY KEY (device, metric, ts, month)
) CLUSTERED INTO 6 SHARDS PARTITIONED BY (month);

-- Tumbling windows of 1m, [window_start, window_end), aligned to the epoch.
CREATE TABLE IF NOT EXISTS readings_1m (
    device        TEXT                     NOT NULL,
    metric        TEXT                     NOT NULL,
    window_start  TIMESTAMP WITH TIME ZONE NOT NULL,
    window_end    TIMESTAMP WITH TIME ZONE NOT NULL,
    count_all     BIGINT                   NOT NULL,
    count_bad     BIGINT                   NOT NULL,
    count_numeric BIGINT                   NOT NULL,
    value_min     DOUBLE PRECISION,
    value_max     DOUBLE PRECISION,
    value_sum     DOUBLE PRECISION,
    value_mean    DOUBLE PRECISION,
    value_first   DOUBLE PRECISION,
    value_last    DOUBLE PRECISION,
    last_text     TEXT INDEX OFF STORAGE WITH (columnstore = false),
    time_first    TIMESTAMP WITH TIME ZONE,
    time_last     TIMESTAMP WITH TIME ZONE,
    is_final      BOOLEAN                  NOT NULL,
    updated_at    TIMESTAMP WITH TIME ZONE NOT NULL,
    month         TIMESTAMP WITH TIME ZONE GENERATED ALWAYS AS date_trunc('month', window_start),
    PRIMARY KEY (device, metric, window_start, month)
) CLUSTERED INTO 6 SHARDS PARTITIONED BY (month);

-- Tumbling windows of 1h, [window_start, window_end), aligned to the epoch.
CREATE TABLE IF NOT EXISTS readings_1h (
    device        TEXT                     NOT NULL,
    metric        TEXT                     NOT NULL,
    window_start  TIMESTAMP WITH TIME ZONE NOT NULL,
    window_end    TIMESTAMP WITH TIME ZONE NOT NULL,
    count_all     BIGINT                   NOT NULL,
    count_bad     BIGINT                   NOT NULL,
    count_numeric BIGINT                   NOT NULL,
    value_min     DOUBLE PRECISION,
    value_max     DOUBLE PRECISION,
    value_sum     DOUBLE PRECISION,
    value_mean    DOUBLE PRECISION,
    value_first   DOUBLE PRECISION,
    value_last    DOUBLE PRECISION,
    last_text     TEXT INDEX OFF STORAGE WITH (columnstore = false),
    time_first    TIMESTAMP WITH TIME ZONE,
    time_last     TIMESTAMP WITH TIME ZONE,
    is_final      BOOLEAN                  NOT NULL,
    updated_at    TIMESTAMP WITH TIME ZONE NOT NULL,
    month         TIMESTAMP WITH TIME ZONE GENERATED ALWAYS AS date_trunc('month', window_start),
    PRIMARY KEY (device, metric, window_start, month)
) CLUSTERED INTO 6 SHARDS PARTITIONED BY (month);

-- Kafka records that could not be loaded: undecodable, an unknown format version, or refused by the database.
-- payload is the record value, base64-encoded (CrateDB has no byte array type).
CREATE TABLE IF NOT EXISTS dead_letters (
    kafka_topic     TEXT                     NOT NULL,
    kafka_partition INTEGER                  NOT NULL,
    kafka_offset    BIGINT                   NOT NULL,
    reason          TEXT                     NOT NULL,
    payload         TEXT                     NOT NULL INDEX OFF STORAGE WITH (columnstore = false),
    received_at     TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (kafka_topic, kafka_partition, kafka_offset)
) CLUSTERED INTO 6 SHARDS;

-- The consumer's window state per Kafka partition (window.Checkpoint as JSON), written before the partition's
-- offset is committed, read when the partition is assigned: a replay then knows which windows were final.
CREATE TABLE IF NOT EXISTS checkpoints (
    consumer_group  TEXT        NOT NULL,
    kafka_topic     TEXT        NOT NULL,
    kafka_partition INTEGER     NOT NULL,
    checkpoint      TEXT        NOT NULL INDEX OFF STORAGE WITH (columnstore = false),
    updated_at      TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (consumer_group, kafka_topic, kafka_partition)
) CLUSTERED INTO 6 SHARDS;
