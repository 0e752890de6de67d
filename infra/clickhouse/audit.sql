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
-- Views for the questions auditors ask; docs/audit.md explains each with examples.
-- Everything that happened to one patient, including alerts about them:
--   SELECT * FROM audit.patient_timeline(pseudonym = 'p-...')
CREATE OR REPLACE VIEW audit.patient_timeline AS
SELECT occurred_at, recorded_at, actor, action, subject_type, subject_id, details, chain, seq
FROM audit.audit_events
WHERE (subject_type = 'patient' AND subject_id = {pseudonym:String})
   OR (subject_type = 'alert' AND JSONExtractString(details, 'pseudonym') = {pseudonym:String})
ORDER BY occurred_at, chain, seq
;
-- Each alert from raising to the clinician's response and the patient's outcome.
-- Response and onset columns are NULL when there is none (Nullable, so LEFT JOIN keeps NULL).
CREATE OR REPLACE VIEW audit.alert_lifecycle AS
SELECT
    raised.subject_id AS alert_id,
    JSONExtractString(raised.details, 'pseudonym') AS pseudonym,
    raised.occurred_at AS raised_at,
    JSONExtractString(raised.details, 'severity') AS severity,
    JSONExtractString(raised.details, 'model_version') AS model_version,
    response.responded_at,
    response.response,
    response.clinician,
    onset.onset_at
FROM (SELECT subject_id, occurred_at, details FROM audit.audit_events WHERE action = 'alert.raised') AS raised
LEFT JOIN
(
    SELECT subject_id, toNullable(min(occurred_at)) AS responded_at,
           toNullable(argMin(action, occurred_at)) AS response, toNullable(argMin(actor, occurred_at)) AS clinician
    FROM audit.audit_events
    WHERE subject_type = 'alert' AND action IN ('alert.acknowledged', 'alert.overridden', 'alert.escalated')
    GROUP BY subject_id
) AS response ON response.subject_id = raised.subject_id
LEFT JOIN
(
    SELECT subject_id AS pseudonym, toNullable(min(occurred_at)) AS onset_at
    FROM audit.audit_events
    WHERE action = 'outcome.received' AND JSONExtractString(details, 'outcome') = 'SEPSIS_ONSET'
    GROUP BY subject_id
) AS onset ON onset.pseudonym = JSONExtractString(raised.details, 'pseudonym')
;
-- Which model version made which automated decisions, and when.
CREATE OR REPLACE VIEW audit.model_decisions AS
SELECT JSONExtractString(details, 'model_version') AS model_version, action,
       count() AS decisions, min(occurred_at) AS first_at, max(occurred_at) AS last_at
FROM audit.audit_events
WHERE action IN ('risk.scored', 'alert.raised')
GROUP BY model_version, action
;
-- The model registry: per model version, what the workers last recorded about it
-- (model.started, model.checkpointed): kind, hyperparameters, features, training
-- window in event time, progressive AUROC, code version, and the last artefact's
-- SHA-256. last_live_at is the last time a worker recorded the version as its champion
-- (NULL when none did), so the version with the latest one is the champion.
CREATE OR REPLACE VIEW audit.model_registry AS
SELECT subject_id AS model_version,
       argMaxIf(JSONExtractString(details, 'kind'), occurred_at, recorded) AS kind,
       minIf(occurred_at, recorded) AS first_seen,
       argMaxIf(JSONExtractString(details, 'code_version'), occurred_at, recorded) AS code_version,
       argMaxIf(JSONExtractRaw(details, 'hyperparameters'), occurred_at, recorded) AS hyperparameters,
       argMaxIf(length(JSONExtractArrayRaw(details, 'features')), occurred_at, recorded) AS features,
       argMaxIf(JSONExtractUInt(details, 'labels'), occurred_at, recorded) AS labels,
       argMaxIf(JSONExtractUInt(details, 'positives'), occurred_at, recorded) AS positives,
       argMaxIf(JSONExtractString(details, 'trained_from'), occurred_at, recorded) AS trained_from,
       argMaxIf(JSONExtractString(details, 'trained_to'), occurred_at, recorded) AS trained_to,
       argMaxIf(JSONExtract(details, 'progressive_auroc', 'Nullable(Float64)'), occurred_at, recorded) AS progressive_auroc,
       argMaxIf(JSONExtractUInt(details, 'progressive_auroc_labels'), occurred_at, recorded) AS progressive_auroc_labels,
       argMaxIf(JSONExtractString(details, 'sha256'), occurred_at, action = 'model.checkpointed') AS sha256,
       argMaxIf(JSONExtractString(details, 'artefact'), occurred_at, action = 'model.checkpointed') AS artefact,
       maxIf(occurred_at, action = 'model.checkpointed') AS checkpointed_at,
       if(countIf(live) = 0, NULL, maxIf(occurred_at, live)) AS last_live_at
FROM
(
    SELECT subject_id, occurred_at, action, details,
           action IN ('model.started', 'model.checkpointed') AS recorded,
           action IN ('model.promoted', 'model.rolled_back') OR JSONExtractString(details, 'role') = 'champion' AS live
    FROM audit.audit_events
    WHERE subject_type = 'model' AND action IN ('model.started', 'model.checkpointed', 'model.promoted', 'model.rolled_back')
)
GROUP BY subject_id
HAVING countIf(recorded) > 0
;
-- Every governance step on the models: approvals and refusals by people, and the
-- champion changes that workers applied (or refused to apply).
CREATE OR REPLACE VIEW audit.model_governance AS
SELECT occurred_at, actor, action, subject_id AS model_version,
       JSONExtractString(details, 'previous_version') AS previous_version,
       JSONExtractString(details, 'reason') AS reason,
       JSONExtractString(details, 'decision_id') AS decision_id,
       JSONExtractString(details, 'refusal') AS refusal
FROM audit.audit_events
WHERE action IN ('model.promotion.approved', 'model.promotion.refused', 'model.rollback.approved',
                 'model.rollback.refused', 'model.promoted', 'model.rolled_back', 'model.decision.refused')
ORDER BY occurred_at
;
-- Who re-identified which patient, for which alert and why.
CREATE OR REPLACE VIEW audit.reidentifications AS
SELECT occurred_at, actor AS clinician, action, subject_id AS pseudonym,
       JSONExtractString(details, 'alert_id') AS alert_id, JSONExtractString(details, 'reason') AS reason,
       JSONExtractString(details, 'refusal') AS refusal
FROM audit.audit_events
WHERE action IN ('patient.reidentified', 'reidentification.refused')
;
-- Drift findings and the model's measured performance over time.
CREATE OR REPLACE VIEW audit.drift_history AS
SELECT occurred_at, action, subject_id, details,
       JSONExtractFloat(details, 'model_auroc') AS model_auroc,
       JSONExtractFloat(details, 'news2_auroc') AS news2_auroc
FROM audit.audit_events
WHERE action LIKE 'drift.%' OR action = 'model.performance'
ORDER BY occurred_at
;
