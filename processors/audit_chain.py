"""The audit log's hashing: canonical bytes, the hash chain and the Merkle tree.

Each audit partition is one chain. Entry ``seq`` of a chain stores

    leaf = SHA-256(0x00 || canonical bytes of the entry)
    hash = SHA-256(hash of entry seq-1 || leaf)        (the first entry uses the genesis hash)

so editing, deleting, reordering or inserting an entry changes every later hash. The
leaves also form a Merkle tree as defined in RFC 9162 (Certificate Transparency 2.0),
section 2.1: interior nodes are SHA-256(0x01 || left || right). A checkpoint signs the
tree head (size and root), so one entry's inclusion can be proven with log2(size)
hashes, and an earlier checkpoint must stay a prefix of every later one.

The canonical bytes are each field, in ``CANONICAL_FIELDS`` order, as UTF-8 text
prefixed with its byte length and a colon. Times are microseconds since the epoch.
The same bytes are computed in ClickHouse SQL (``CANONICAL_SQL``), so verification
can hash millions of rows inside the database.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

CANONICAL_FIELDS = (
    "event_id", "occurred_at", "emitted_at", "recorded_at", "actor", "action",
    "subject_type", "subject_id", "input_sha256", "details",
)
TIME_FIELDS = {"occurred_at", "emitted_at", "recorded_at"}
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _sql_field(name: str) -> str:
    if name in TIME_FIELDS:
        value = f"toString(toUnixTimestamp64Micro({name}))"
    elif name == "event_id":
        value = "toString(event_id)"
    else:
        value = name
    return f"toString(length({value})), ':', {value}"


# ClickHouse expression for the canonical bytes of a row of audit.audit_events.
CANONICAL_SQL = "concat(" + ", ".join(_sql_field(name) for name in CANONICAL_FIELDS) + ")"
LEAF_SQL = f"SHA256(concat(char(0), {CANONICAL_SQL}))"


def epoch_micros(value: datetime) -> int:
    delta = value.astimezone(timezone.utc) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def canonical_bytes(entry: dict[str, object]) -> bytes:
    """Return the canonical bytes of an audit entry (times as datetimes or epoch microseconds).

    >>> canonical_bytes({"event_id": "e", "occurred_at": datetime(1970, 1, 1, 0, 0, 1, tzinfo=timezone.utc),
    ...     "emitted_at": _EPOCH, "recorded_at": _EPOCH, "actor": "scorer", "action": "risk.scored",
    ...     "subject_type": "patient", "subject_id": "p-1", "input_sha256": "ab", "details": "{}"})
    b'1:e7:10000001:01:06:scorer11:risk.scored7:patient3:p-12:ab2:{}'
    """
    parts = []
    for name in CANONICAL_FIELDS:
        value = entry[name]
        # Times are datetimes, or already microseconds since the epoch.
        text = str(epoch_micros(value)) if isinstance(value, datetime) else str(value)
        encoded = text.encode()
        parts.append(b"%d:%s" % (len(encoded), encoded))
    return b"".join(parts)


def leaf_hash(canonical: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + canonical).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def genesis_hash(chain: int) -> bytes:
    """Return the hash that precedes entry 0 of ``chain``, binding the chain's number."""
    return hashlib.sha256(f"clinops-audit-chain/{chain}".encode()).digest()


def chain_hash(previous: bytes, leaf: bytes) -> bytes:
    return hashlib.sha256(previous + leaf).digest()


EMPTY_ROOT = hashlib.sha256(b"").digest()


@dataclass
class MerkleFrontier:
    """The roots of the perfect subtrees that make up a tree of ``size`` leaves.

    Appending is O(log n) and so is computing the root, so a writer can sign tree heads
    over millions of entries without rereading them.
    """

    size: int = 0
    peaks: list[bytes] = field(default_factory=list)

    def append(self, leaf: bytes) -> None:
        self.peaks.append(leaf)
        self.size += 1
        # A completed pair of equal subtrees merges for every trailing 1 bit that
        # the increment turned into 0.
        merged = self.size
        while merged % 2 == 0:
            right = self.peaks.pop()
            left = self.peaks.pop()
            self.peaks.append(node_hash(left, right))
            merged //= 2

    def root(self) -> bytes:
        if not self.peaks:
            return EMPTY_ROOT
        root = self.peaks[-1]
        for peak in reversed(self.peaks[:-1]):
            root = node_hash(peak, root)
        return root


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """Return the RFC 9162 tree head hash of ``leaves``.

    >>> merkle_root([leaf_hash(b"a")]) == leaf_hash(b"a")
    True
    """
    frontier = MerkleFrontier()
    for leaf in leaves:
        frontier.append(leaf)
    return frontier.root()


def inclusion_proof(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """Return the RFC 9162 inclusion proof (audit path) of leaf ``index`` in ``leaves``.

    Built level by level: a node without a right sibling moves up unchanged, which is
    how the RFC's split at the largest power of two below the size comes out.
    """
    if not 0 <= index < len(leaves):
        raise IndexError(f"leaf {index} is outside a tree of {len(leaves)} leaves")
    proof = []
    level = list(leaves)
    position = index
    while len(level) > 1:
        sibling = position ^ 1
        if sibling < len(level):
            proof.append(level[sibling])
        level = [node_hash(level[i], level[i + 1]) if i + 1 < len(level) else level[i] for i in range(0, len(level), 2)]
        position //= 2
    return proof


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Iterable[bytes], root: bytes) -> bool:
    """Check an inclusion proof with the algorithm of RFC 9162, section 2.1.3.2."""
    if index >= size:
        return False
    fn, sn = index, size - 1
    result = leaf
    for node in proof:
        if sn == 0:
            return False
        if fn % 2 == 1 or fn == sn:
            result = node_hash(node, result)
            if fn % 2 == 0:
                while fn % 2 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            result = node_hash(result, node)
        fn >>= 1
        sn >>= 1
    return sn == 0 and result == root
