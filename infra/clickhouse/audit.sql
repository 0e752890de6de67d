-- Audit store schema, one DDL for embedded chDB and a ClickHouse server.
-- Statements are separated by lines holding only ";" so the store can run them one by one.
CREATE DATABASE IF NOT EXISTS audit
;
-- One row per audit event. Ordered by subject then event time, because the common
-- question is "everything that happened to this patient (or alert, or model)".
-- Partitioned by month of event time, so retention drops whole partitions.
CREATE TABLE IF NOT EXISTS audit.audit_events
(
    event_id     UUID,
    occurred_at  DateTime64(6, 'UTC'),
    emitted_at   DateTime64(6, 'UTC'),
    recorded_at  DateTime64(6, 'UTC') DEFAULT now64(6),
    actor        LowCardinality(String),
    action       LowCardinality(String),
    subject_type LowCardinality(String),
    subject_id   String,
    input_sha256 FixedString(64),
    details      String
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (subject_type, subject_id, occurred_at, event_id)
-- The EU AI Act requires at least six months (Art. 19); hospitals keep records for years.
TTL toDateTime(occurred_at) + INTERVAL 10 YEAR
;
