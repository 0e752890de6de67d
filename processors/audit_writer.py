"""The audit writer: chain, checkpoint and persist audit events, exactly once.

One writer owns each audit partition (one chain). For each batch from a partition:
1. decode each message; an undecodable one is replaced by its ``input.rejected``
   audit event and a dead letter;
2. skip events whose id the chain already contains (a redelivery upstream);
3. assign consecutive sequence numbers and chain hashes, and add the leaves to the
   Merkle frontier;
4. insert the rows in one statement, with the topic offset each row came from;
5. every ``checkpoint_every`` events or ``checkpoint_interval_s`` seconds, sign the
   tree head and store it.
The store is the only record of progress: after a crash the writer reads each chain's
last row and resumes at the next offset, so no event is lost or written twice.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any
from datetime import datetime, timezone

from processors.audit_chain import (
    TIME_FIELDS, CANONICAL_FIELDS, MerkleFrontier, canonical_bytes, chain_hash, epoch_micros, genesis_hash, leaf_hash, LEAF_SQL,
)
from processors.messages import Input, Output, RejectionLog, reject
from processors.signing import Signer
from schemas.codec import registry
from schemas.errors import DecodeError
from schemas.models import AuditCheckpoint
from streams.sinks.audit_store import AUDIT_TABLE, CHECKPOINT_TABLE, AuditStore

log = logging.getLogger(__name__)

STAGE = "audit-writer"
ROW_COLUMNS = (*CANONICAL_FIELDS, "chain", "seq", "source_offset", "hash")
CHECKPOINT_COLUMNS = ("chain", "tree_size", "root", "head_hash", "signed_at", "key_id", "public_key", "signature", "peaks")
# Ids remembered per chain to drop redeliveries. Upstream stages redeliver at most
# what they processed since their last offset commit (seconds of input), far fewer.
RECENT_IDS = 200_000


TIME_INDEXES = [CANONICAL_FIELDS.index(name) for name in TIME_FIELDS]


def _plain_entry(record: dict[str, Any]) -> dict[str, Any]:
    """Convert a decoded audit event to the plain form: string id, integer microseconds."""
    plain = dict(record)
    plain["event_id"] = str(record["event_id"])
    for name in ("occurred_at", "emitted_at"):
        plain[name] = epoch_micros(record[name])
    return plain


def clickhouse_time(micros: int) -> str:
    """Format epoch microseconds as ClickHouse reads a DateTime64(6): seconds.fraction."""
    seconds, fraction = divmod(micros, 1_000_000)
    return f"{seconds}.{fraction:06d}"


def checkpoint_message(chain: int, tree_size: int, root: str, head_hash: str, signed_at: datetime) -> bytes:
    """Return the bytes a checkpoint signature covers."""
    return f"clinops-audit-checkpoint/v1\n{chain}\n{tree_size}\n{root}\n{head_hash}\n{epoch_micros(signed_at)}".encode()


@dataclass
class ChainState:
    chain: int
    next_seq: int = 0
    head: bytes = b""
    last_offset: int = -1
    frontier: MerkleFrontier = field(default_factory=MerkleFrontier)
    checkpointed_size: int = 0
    checkpointed_at: float = field(default_factory=time.monotonic)
    recent_ids: OrderedDict[str, None] = field(default_factory=OrderedDict)


class ChainWriter:
    """Chain and persist audit events, without Kafka, so that the logic is testable alone."""

    def __init__(self, store: AuditStore, signer: Signer, checkpoint_every: int = 10_000, checkpoint_interval_s: float = 10.0) -> None:
        self.store = store
        self.signer = signer
        self.checkpoint_every = checkpoint_every
        self.checkpoint_interval_s = checkpoint_interval_s
        self.chains: dict[int, ChainState] = {}
        self.written = 0
        self.rejections = RejectionLog(log)

    def resume(self, chain: int) -> ChainState:
        """Load a chain's head, Merkle frontier and recent ids from the store."""
        state = ChainState(chain=chain, head=genesis_hash(chain))
        head = self.store.execute(
            f"SELECT seq, hash, source_offset FROM {AUDIT_TABLE} WHERE chain = {chain} ORDER BY seq DESC LIMIT 1"
        ).rows
        if head:
            seq, hash_hex, offset = head[0]
            state.next_seq, state.head, state.last_offset = int(seq) + 1, bytes.fromhex(hash_hex), int(offset)

        checkpoint = self.store.execute(
            f"SELECT tree_size, peaks FROM {CHECKPOINT_TABLE} WHERE chain = {chain} AND tree_size <= {state.next_seq} "
            "ORDER BY tree_size DESC LIMIT 1"
        ).rows
        if checkpoint:
            size, peaks = checkpoint[0]
            state.frontier = MerkleFrontier(int(size), [bytes.fromhex(p) for p in peaks])
            state.checkpointed_size = int(size)
        # Leaves written after the last checkpoint extend the frontier again.
        if state.frontier.size < state.next_seq:
            blob = self.store.binary(
                f"SELECT {LEAF_SQL} FROM {AUDIT_TABLE} WHERE chain = {chain} AND seq >= {state.frontier.size} ORDER BY seq"
            )
            for start in range(0, len(blob), 32):
                state.frontier.append(blob[start:start + 32])

        recent = self.store.execute(
            f"SELECT toString(event_id) FROM {AUDIT_TABLE} WHERE chain = {chain} ORDER BY seq DESC LIMIT {RECENT_IDS}"
        ).rows
        state.recent_ids = OrderedDict((row[0], None) for row in reversed(recent))
        self.chains[chain] = state
        log.info("audit chain %d resumes at seq %d after offset %d", chain, state.next_seq, state.last_offset)
        return state

    def write(self, chain: int, messages: list[Input]) -> list[Output]:
        """Chain and persist one batch from one partition; return dead letters to send."""
        state = self.chains.get(chain) or self.resume(chain)
        recorded_at = epoch_micros(datetime.now(timezone.utc))
        rows = []
        outputs: list[Output] = []
        batch_ids: set[str] = set()
        seq, head = state.next_seq, state.head
        leaves = []

        for message in messages:
            if message.offset <= state.last_offset:
                continue  # already persisted before a restart
            try:
                entry = registry.decode_plain(message.value, "audit_event")
                if entry is None:  # an older schema version: decode and resolve it
                    entry = _plain_entry(registry.decode(message.value, "audit_event")[1])
            except DecodeError as exc:
                self.rejections.warning(message, str(exc))
                letter, audit = reject(STAGE, message, exc)
                outputs.append(letter)
                entry = _plain_entry(audit.event.model_dump())
            event_id = str(entry["event_id"])
            if event_id in state.recent_ids or event_id in batch_ids:
                continue
            batch_ids.add(event_id)

            entry["recorded_at"] = recorded_at
            leaf = leaf_hash(canonical_bytes(entry))
            head = chain_hash(head, leaf)
            leaves.append(leaf)
            row = [entry[name] for name in CANONICAL_FIELDS]
            for index in TIME_INDEXES:
                row[index] = clickhouse_time(row[index])
            rows.append([*row, chain, seq, message.offset, head.hex()])
            seq += 1

        last_offset = max((m.offset for m in messages), default=state.last_offset)
        if rows:
            # The last message may be a skipped duplicate: record the newest offset read
            # on the last row, so a restart does not read the batch again.
            rows[-1][ROW_COLUMNS.index("source_offset")] = max(last_offset, rows[-1][ROW_COLUMNS.index("source_offset")])
            self.store.insert_rows(AUDIT_TABLE, ROW_COLUMNS, rows)
        # Only now, with the rows stored, does the in-memory state move on.
        for leaf in leaves:
            state.frontier.append(leaf)
        for event_id in batch_ids:
            state.recent_ids[event_id] = None
        while len(state.recent_ids) > RECENT_IDS:
            state.recent_ids.popitem(last=False)
        state.next_seq, state.head = seq, head
        if rows:
            state.last_offset = max(state.last_offset, last_offset)
        self.written += len(rows)
        return outputs

    def checkpoint_due(self, state: ChainState) -> bool:
        pending = state.frontier.size - state.checkpointed_size
        if pending <= 0:
            return False
        return pending >= self.checkpoint_every or time.monotonic() - state.checkpointed_at >= self.checkpoint_interval_s

    def checkpoint(self, chain: int, force: bool = False) -> dict[str, object] | None:
        """Sign and store the chain's tree head when one is due (or, with ``force``,
        whenever entries are unsigned); return it, or None."""
        state = self.chains.get(chain)
        if state is None or state.frontier.size == state.checkpointed_size:
            return None
        if not force and not self.checkpoint_due(state):
            return None
        signed_at = datetime.now(timezone.utc)
        root, head = state.frontier.root().hex(), state.head.hex()
        signature = self.signer.sign(checkpoint_message(chain, state.frontier.size, root, head, signed_at))
        record = {
            "chain": chain, "tree_size": state.frontier.size, "root": root, "head_hash": head,
            "signed_at": signed_at, "key_id": self.signer.key_id, "public_key": self.signer.public_key.hex(),
            "signature": signature.hex(), "peaks": [peak.hex() for peak in state.frontier.peaks],
        }
        self.store.insert_rows(CHECKPOINT_TABLE, CHECKPOINT_COLUMNS, [[record[name] for name in CHECKPOINT_COLUMNS]])
        state.checkpointed_size, state.checkpointed_at = state.frontier.size, time.monotonic()
        log.info("audit chain %d checkpoint at size %d", chain, state.frontier.size)
        return record


def checkpoint_event(record: dict[str, object]) -> AuditCheckpoint:
    """Build the checkpoint topic's event, for anchoring outside the system."""
    return AuditCheckpoint(**{key: value for key, value in record.items() if key != "peaks"})
