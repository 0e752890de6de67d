-- Audit store schema, one DDL for embedded chDB and a ClickHouse server.
-- Statements are separated by lines holding only ";" so the store can run them one by one.
CREATE DATABASE IF NOT EXISTS audit
;
-- One row per audit event, hash-chained per audit partition ("chain"): seq counts from
-- 0 without gaps, and hash = SHA-256(previous hash || leaf), leaf = SHA-256(0x00 ||
-- canonical bytes) (processors/audit_chain.py). source_offset is the audit topic
-- offset the row came from, so a restarted writer resumes exactly after it.
-- Ordered by subject then event time, because the common question is "everything
-- that happened to this patient (or alert, or model)". Partitioned by the month the
-- row was recorded, so that each insert of the writer touches one partition and is
-- atomic, and retention drops whole partitions.
CREATE TABLE IF NOT EXISTS audit.audit_events
(
    event_id      UUID,
    occurred_at   DateTime64(6, 'UTC'),
    emitted_at    DateTime64(6, 'UTC'),
    recorded_at   DateTime64(6, 'UTC'),
    actor         LowCardinality(String),
    action        LowCardinality(String),
    subject_type  LowCardinality(String),
    subject_id    String,
    input_sha256  FixedString(64),
    details       String,
    chain         UInt16,
    seq           UInt64,
    source_offset Int64,
    hash          FixedString(64)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(recorded_at)
ORDER BY (subject_type, subject_id, occurred_at, event_id)
-- The EU AI Act requires at least six months (Art. 19); hospitals keep records for years.
TTL toDateTime(recorded_at) + INTERVAL 10 YEAR
;
-- Signed tree heads: after every checkpoint interval the writer signs the Merkle root
-- over the chain's first tree_size leaves (Ed25519). peaks lets a restarted writer
-- continue the tree without rereading it.
CREATE TABLE IF NOT EXISTS audit.checkpoints
(
    chain       UInt16,
    tree_size   UInt64,
    root        FixedString(64),
    head_hash   FixedString(64),
    signed_at   DateTime64(6, 'UTC'),
    key_id      String,
    public_key  String,
    signature   String,
    peaks       Array(String)
)
ENGINE = MergeTree
ORDER BY (chain, tree_size)
;
