"""Verify the persisted audit chains and prove an entry's inclusion.

Verification recomputes, for every chain, each entry's leaf from its columns (in
ClickHouse, so millions of rows hash quickly), then the chain hashes in sequence, the
Merkle root at every checkpoint, and each checkpoint's signature against the trusted
public keys. It names the first bad sequence number of each broken chain.
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from processors.audit_chain import LEAF_SQL, MerkleFrontier, chain_hash, genesis_hash, inclusion_proof, merkle_root
from processors.audit_writer import checkpoint_message
from processors.signing import verify_signature
from schemas.errors import ClinopsError
from streams.sinks.audit_store import AUDIT_TABLE, CHECKPOINT_TABLE, AuditStore

# Rows read per query while verifying: 1 M rows of 72 bytes keep memory near 100 MB.
CHUNK_ROWS = 1_000_000
ROW = struct.Struct("<Q32s32s")


class ProofError(ClinopsError):
    """No inclusion proof can be made for the requested event."""


@dataclass
class ChainReport:
    chain: int
    entries: int = 0
    checkpoints: int = 0
    first_bad_seq: int | None = None
    problem: str | None = None

    def fail(self, seq: int, problem: str) -> None:
        if self.first_bad_seq is None or seq < self.first_bad_seq:
            self.first_bad_seq, self.problem = seq, problem


@dataclass
class VerifyReport:
    chains: list[ChainReport] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(chain.problem is None for chain in self.chains)

    def lines(self) -> list[str]:
        lines = []
        for chain in self.chains:
            if chain.problem is None:
                noun = "checkpoint" if chain.checkpoints == 1 else "checkpoints"
                lines.append(f"chain {chain.chain}: ok, {chain.entries} entries, {chain.checkpoints} signed {noun} verified")
            else:
                lines.append(f"chain {chain.chain}: FAILED at seq {chain.first_bad_seq}: {chain.problem}")
        return lines


def _checkpoints(store: AuditStore, chain: int) -> list[list[Any]]:
    return store.execute(
        f"SELECT tree_size, root, head_hash, toUnixTimestamp64Micro(signed_at), key_id, public_key, signature "
        f"FROM {CHECKPOINT_TABLE} WHERE chain = {chain} ORDER BY tree_size"
    ).rows


def verify(store: AuditStore, trusted_keys: dict[str, bytes]) -> VerifyReport:
    """Verify every chain in the store against the trusted signing keys."""
    chains = store.execute(
        f"SELECT chain FROM {AUDIT_TABLE} GROUP BY chain UNION DISTINCT SELECT chain FROM {CHECKPOINT_TABLE} GROUP BY chain"
    ).rows
    report = VerifyReport()
    for (chain,) in sorted(chains, key=lambda row: int(row[0])):
        report.chains.append(verify_chain(store, int(chain), trusted_keys))
    return report


def verify_chain(store: AuditStore, chain: int, trusted_keys: dict[str, bytes]) -> ChainReport:
    report = ChainReport(chain)
    checkpoints = _checkpoints(store, chain)
    report.checkpoints = len(checkpoints)
    roots_due = {int(row[0]): row for row in checkpoints}
    head, frontier, expected_seq = genesis_hash(chain), MerkleFrontier(), 0
    heads: dict[int, bytes] = {}

    # 1. Sequence numbers and chain hashes, in chunks of CHUNK_ROWS.
    while report.first_bad_seq is None:
        blob = store.binary(
            f"SELECT seq, {LEAF_SQL}, CAST(unhex(hash) AS FixedString(32)) FROM {AUDIT_TABLE} "
            f"WHERE chain = {chain} AND seq >= {expected_seq} ORDER BY seq, event_id LIMIT {CHUNK_ROWS}"
        )
        if not blob:
            break
        for seq, leaf, stored in ROW.iter_unpack(blob):
            if seq != expected_seq:
                problem = f"entry {expected_seq} is missing" if seq > expected_seq else f"entry {seq} appears twice"
                report.fail(min(seq, expected_seq), f"{problem} (deleted, forged or reordered rows)")
                break
            head = chain_hash(head, leaf)
            if head != stored:
                report.fail(seq, "the stored hash does not match the entry's contents (edited or reordered row)")
                break
            frontier.append(leaf)
            expected_seq += 1
            if expected_seq in roots_due:
                heads[expected_seq] = head
                if frontier.root().hex() != roots_due[expected_seq][1]:
                    report.fail(seq, f"the Merkle root differs from the checkpoint at size {expected_seq}")
                    break
        if len(blob) < CHUNK_ROWS * ROW.size:
            break
    report.entries = expected_seq

    # 2. Signed checkpoints: genuine, by a trusted key, and covering rows that exist.
    for tree_size, root, head_hash, signed_micros, key_id, public_hex, signature_hex in checkpoints:
        tree_size = int(tree_size)
        public_key = bytes.fromhex(public_hex)
        message = checkpoint_message(chain, tree_size, root, head_hash, _utc_from_micros(int(signed_micros)))
        if trusted_keys.get(key_id) != public_key:
            report.fail(tree_size - 1, f"the checkpoint at size {tree_size} is signed by an untrusted key {key_id}")
        elif not verify_signature(public_key, bytes.fromhex(signature_hex), message):
            report.fail(tree_size - 1, f"the checkpoint at size {tree_size} has an invalid signature")
        elif tree_size > report.entries and report.first_bad_seq is None:
            report.fail(report.entries, f"a checkpoint covers {tree_size} entries but the chain ends after {report.entries} (truncated)")
        elif tree_size in heads and heads[tree_size].hex() != head_hash:
            report.fail(tree_size - 1, f"the chain hash differs from the checkpoint at size {tree_size}")
    return report


def _utc_from_micros(micros: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=micros)


def prove(store: AuditStore, event_id: str) -> dict[str, Any]:
    """Return an inclusion proof of one audit event in its chain's latest checkpoint."""
    found = store.execute(
        f"SELECT chain, seq, lower(hex({LEAF_SQL})) FROM {AUDIT_TABLE} WHERE event_id = toUUIDOrZero('{_uuid_text(event_id)}')"
    ).rows
    if not found:
        raise ProofError(f"no audit event with id {event_id} in the store")
    chain, seq, leaf = int(found[0][0]), int(found[0][1]), found[0][2]
    covering = [row for row in _checkpoints(store, chain) if int(row[0]) > seq]
    if not covering:
        raise ProofError(f"event {event_id} (chain {chain}, seq {seq}) is not covered by a signed checkpoint yet; retry after the next one")
    tree_size, root, head_hash, signed_micros, key_id, public_hex, signature_hex = covering[-1]
    tree_size = int(tree_size)

    blob = store.binary(f"SELECT {LEAF_SQL} FROM {AUDIT_TABLE} WHERE chain = {chain} AND seq < {tree_size} ORDER BY seq")
    leaves = [blob[i:i + 32] for i in range(0, len(blob), 32)]
    if len(leaves) != tree_size:
        raise ProofError(f"chain {chain} is missing entries: {len(leaves)} of the {tree_size} its checkpoint covers; run `clinops audit verify`")
    if merkle_root(leaves).hex() != root:
        raise ProofError(f"chain {chain} no longer matches its signed checkpoint at size {tree_size}; run `clinops audit verify`")

    return {
        "event_id": event_id,
        "chain": chain,
        "leaf_index": seq,
        "leaf_hash": leaf,
        "tree_size": tree_size,
        "root": root,
        "audit_path": [node.hex() for node in inclusion_proof(seq, leaves)],
        "checkpoint": {
            "head_hash": head_hash,
            "signed_at_micros": int(signed_micros),
            "key_id": key_id,
            "public_key": public_hex,
            "signature": signature_hex,
            "message": checkpoint_message(chain, tree_size, root, head_hash, _utc_from_micros(int(signed_micros))).decode(),
        },
    }


def _uuid_text(text: str) -> str:
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise ProofError(f"{text!r} is not an event id (a UUID)") from None
