"""The audit writer on real chDB: chaining, resuming, checkpoints, tamper detection, proofs."""

from __future__ import annotations

import hashlib
import itertools
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from processors.audit_chain import canonical_bytes, leaf_hash
from processors.audit_verify import ProofError, prove, verify_chain
from processors.audit_writer import ChainWriter
from processors.messages import Input
from processors.signing import Signer, load_or_create_signer, trusted_public_keys, verify_signature
from streams.records import audit_event
from streams.sinks.audit_store import ChdbStore

T0 = datetime(2026, 2, 1, tzinfo=timezone.utc)
_chains = itertools.count(100)


@pytest.fixture
def chain() -> int:
    """A chain number of its own for each test, in the shared store."""
    return next(_chains)


@pytest.fixture(scope="module")
def keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("keys")


@pytest.fixture(scope="module")
def signer(keys_dir: Path) -> Signer:
    return load_or_create_signer(keys_dir)


def messages(chain: int, count: int, start_offset: int = 0) -> list[Input]:
    result = []
    for i in range(count):
        event = audit_event(actor="test", action="test.event", subject_type="patient", subject_id=f"p-{chain}-{i % 7}",
                            input_bytes=f"{chain}/{start_offset + i}".encode(), occurred_at=T0 + timedelta(minutes=i),
                            details={"i": start_offset + i})
        result.append(Input("audit.events", chain, start_offset + i, None, event.to_avro()))
    return result


def write_chain(store: ChdbStore, signer: Signer, chain: int, count: int, checkpoint_every: int = 10) -> ChainWriter:
    writer = ChainWriter(store, signer, checkpoint_every=checkpoint_every, checkpoint_interval_s=3600)
    batch = messages(chain, count)
    for start in range(0, count, 7):
        writer.write(chain, batch[start:start + 7])
        writer.checkpoint(chain)
    return writer


def mutate(store: ChdbStore, sql: str) -> None:
    store.execute(f"{sql} SETTINGS mutations_sync = 2")


def test_written_chain_verifies(chdb_store: ChdbStore, signer: Signer, keys_dir: Path, chain: int) -> None:
    write_chain(chdb_store, signer, chain, 25)
    report = verify_chain(chdb_store, chain, trusted_public_keys(keys_dir))
    assert report.problem is None
    assert report.entries == 25
    assert report.checkpoints == 2
    seqs = chdb_store.execute(f"SELECT groupArray(seq) FROM (SELECT seq FROM audit_events WHERE chain = {chain} ORDER BY seq)").rows[0][0]
    assert [int(s) for s in seqs] == list(range(25))


def test_redelivered_messages_are_written_once(chdb_store: ChdbStore, signer: Signer, keys_dir: Path, chain: int) -> None:
    writer = ChainWriter(chdb_store, signer)
    batch = messages(chain, 5)
    writer.write(chain, batch)
    # The same events again at later offsets, as an upstream stage redelivers them.
    writer.write(chain, [Input(m.topic, m.partition, m.offset + 5, None, m.value) for m in batch])
    (count,) = chdb_store.execute(f"SELECT count() FROM audit_events WHERE chain = {chain}").rows[0]
    assert int(count) == 5


def test_restarted_writer_resumes_without_gap_or_repeat(chdb_store: ChdbStore, signer: Signer, keys_dir: Path, chain: int) -> None:
    batch = messages(chain, 30)
    first = ChainWriter(chdb_store, signer, checkpoint_every=8)
    first.write(chain, batch[:12])
    first.checkpoint(chain)
    first.write(chain, batch[12:17])

    second = ChainWriter(chdb_store, signer, checkpoint_every=8)
    state = second.resume(chain)
    assert state.last_offset == 16
    assert state.next_seq == 17
    second.write(chain, batch[10:30])  # redelivered from before the resume point
    second.checkpoint(chain)
    report = verify_chain(chdb_store, chain, trusted_public_keys(keys_dir))
    assert report.problem is None
    assert report.entries == 30


def test_undecodable_message_is_chained_as_rejection(chdb_store: ChdbStore, signer: Signer, chain: int) -> None:
    writer = ChainWriter(chdb_store, signer)
    outputs = writer.write(chain, [Input("audit.events", chain, 0, None, b"not avro")])
    assert [o.topic.name for o in outputs] == ["dead.letters"]
    rows = chdb_store.execute(f"SELECT action, subject_id FROM audit_events WHERE chain = {chain}").rows
    assert rows == [["input.rejected", f"audit.events/{chain}/0"]]


@pytest.mark.parametrize(
    ("tamper", "first_bad", "words"),
    [
        ("ALTER TABLE audit_events UPDATE details = '{{\"i\":999}}' WHERE chain = {chain} AND seq = 11", 11, "edited"),
        ("ALTER TABLE audit_events DELETE WHERE chain = {chain} AND seq = 6", 6, "missing"),
        ("ALTER TABLE audit_events UPDATE seq = if(seq = 3, 4, 3) WHERE chain = {chain} AND seq IN (3, 4)", 3, "hash"),
        ("ALTER TABLE audit_events UPDATE actor = 'forger' WHERE chain = {chain} AND seq = 19", 19, "edited"),
    ],
    ids=["edit", "delete", "reorder", "forge-actor"],
)
def test_tampering_is_detected(chdb_store: ChdbStore, signer: Signer, keys_dir: Path, chain: int, tamper: str, first_bad: int, words: str) -> None:
    write_chain(chdb_store, signer, chain, 22)
    mutate(chdb_store, tamper.format(chain=chain))
    report = verify_chain(chdb_store, chain, trusted_public_keys(keys_dir))
    assert report.first_bad_seq == first_bad
    assert words in report.problem


def test_forged_row_with_recomputed_hash_is_detected(chdb_store: ChdbStore, signer: Signer, keys_dir: Path, chain: int) -> None:
    write_chain(chdb_store, signer, chain, 12)
    # A forger copies row 5, changes it and inserts it as a second row 5.
    mutate(chdb_store, f"ALTER TABLE audit_events UPDATE details = '{{}}' WHERE chain = {chain} AND seq = 5")
    report = verify_chain(chdb_store, chain, trusted_public_keys(keys_dir))
    assert report.first_bad_seq == 5


def test_inserted_duplicate_seq_is_detected(chdb_store: ChdbStore, signer: Signer, keys_dir: Path, chain: int) -> None:
    write_chain(chdb_store, signer, chain, 12)
    chdb_store.execute(
        f"INSERT INTO audit_events SELECT generateUUIDv4(), occurred_at, emitted_at, recorded_at, actor, action, subject_type, "
        f"subject_id, input_sha256, details, chain, seq, source_offset, hash FROM audit_events WHERE chain = {chain} AND seq = 8"
    )
    report = verify_chain(chdb_store, chain, trusted_public_keys(keys_dir))
    assert report.first_bad_seq == 8


def test_truncated_tail_is_detected(chdb_store: ChdbStore, signer: Signer, keys_dir: Path, chain: int) -> None:
    # Batches of 7 with a checkpoint due every 10 entries sign the tree at size 14.
    write_chain(chdb_store, signer, chain, 20, checkpoint_every=10)
    mutate(chdb_store, f"ALTER TABLE audit_events DELETE WHERE chain = {chain} AND seq >= 12")
    report = verify_chain(chdb_store, chain, trusted_public_keys(keys_dir))
    assert report.first_bad_seq == 12
    assert "truncated" in report.problem


def test_untrusted_signer_is_detected(chdb_store: ChdbStore, signer: Signer, tmp_path: Path, chain: int) -> None:
    write_chain(chdb_store, signer, chain, 10, checkpoint_every=5)
    other_keys = tmp_path / "other"
    load_or_create_signer(other_keys)
    report = verify_chain(chdb_store, chain, trusted_public_keys(other_keys))
    assert "untrusted key" in report.problem


def rfc9162_verify(index: int, size: int, leaf: bytes, path: list[bytes], root: bytes) -> bool:
    """Inclusion check written from RFC 9162 section 2.1.3.2, independent of the project."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = hashlib.sha256(b"\x01" + p + r).digest()
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            r = hashlib.sha256(b"\x01" + r + p).digest()
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def test_proof_checks_independently(chdb_store: ChdbStore, signer: Signer, keys_dir: Path, chain: int) -> None:
    write_chain(chdb_store, signer, chain, 23, checkpoint_every=10)
    event_id, = chdb_store.execute(f"SELECT toString(event_id) FROM audit_events WHERE chain = {chain} AND seq = 13").rows[0]
    proof = prove(chdb_store, event_id)
    row = chdb_store.execute(
        "SELECT toString(event_id), occurred_at, emitted_at, recorded_at, actor, action, subject_type, subject_id, "
        f"input_sha256, details FROM audit_events WHERE event_id = '{event_id}'"
    ).rows[0]
    names = ("event_id", "occurred_at", "emitted_at", "recorded_at", "actor", "action", "subject_type", "subject_id", "input_sha256", "details")
    entry = dict(zip(names, row))
    for name in ("occurred_at", "emitted_at", "recorded_at"):
        entry[name] = datetime.fromisoformat(entry[name]).replace(tzinfo=timezone.utc)
    leaf = leaf_hash(canonical_bytes(entry))
    assert leaf.hex() == proof["leaf_hash"]
    assert rfc9162_verify(proof["leaf_index"], proof["tree_size"], leaf, [bytes.fromhex(p) for p in proof["audit_path"]], bytes.fromhex(proof["root"]))
    checkpoint = proof["checkpoint"]
    assert checkpoint["public_key"] == signer.public_key.hex()
    assert verify_signature(bytes.fromhex(checkpoint["public_key"]), bytes.fromhex(checkpoint["signature"]), checkpoint["message"].encode())
    assert f"\n{proof['tree_size']}\n{proof['root']}\n" in checkpoint["message"]
    json.dumps(proof)  # printable as JSON


def test_proof_of_unknown_event_is_clear_error(chdb_store: ChdbStore) -> None:
    with pytest.raises(ProofError, match="no audit event"):
        prove(chdb_store, "00000000-0000-0000-0000-000000000000")
    with pytest.raises(ProofError, match="not an event id"):
        prove(chdb_store, "nonsense")


def test_proof_refused_for_edited_chain(chdb_store: ChdbStore, signer: Signer, chain: int) -> None:
    write_chain(chdb_store, signer, chain, 12, checkpoint_every=10)
    event_id, = chdb_store.execute(f"SELECT toString(event_id) FROM audit_events WHERE chain = {chain} AND seq = 0").rows[0]
    mutate(chdb_store, f"ALTER TABLE audit_events UPDATE details = '{{}}' WHERE chain = {chain} AND seq = 7")
    with pytest.raises(ProofError, match="no longer matches its signed checkpoint"):
        prove(chdb_store, event_id)
