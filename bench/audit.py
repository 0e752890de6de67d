"""Benchmark the audit trail: writer throughput, a timeline query and verification.

Runs in-process against a fresh embedded store in a temporary folder:
1. writer: chain, checkpoint (every 10,000) and persist ``--rows`` audit events from
   pre-encoded messages, the same work the writer thread does per Kafka batch;
2. timeline: the rows of one patient pseudonym over the whole table, median of 20;
3. verify: recompute every chain and checkpoint, as `clinops audit verify` does.

Usage: python bench/audit.py [--rows 10000000] [--chains 3]
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import fastavro

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from processors.audit_verify import verify  # noqa: E402
from processors.audit_writer import ChainWriter  # noqa: E402
from processors.messages import Input  # noqa: E402
from processors.signing import load_or_create_signer, trusted_public_keys  # noqa: E402
from schemas.codec import MARKER, registry  # noqa: E402
from streams.sinks.audit_store import ChdbStore  # noqa: E402

BATCH = 5000
PATIENTS = 20_000
START_MICROS = 1_767_225_600_000_000  # 2026-01-01T00:00Z


def encoded_batch(first: int, count: int, chain: int) -> list[Input]:
    """Build ``count`` audit messages quickly, with fastavro on plain values."""
    schema = registry.schema("audit_event")
    header = MARKER + schema.fingerprint
    messages = []
    for i in range(first, first + count):
        out = io.BytesIO()
        out.write(header)
        fastavro.schemaless_writer(out, schema.plain, {
            "event_id": str(uuid.UUID(int=i + 1)), "occurred_at": START_MICROS + i * 1000,
            "emitted_at": START_MICROS + i * 1000, "actor": "scorer", "action": "risk.scored",
            "subject_type": "patient", "subject_id": f"p-{i % PATIENTS:024x}",
            "input_sha256": f"{i:064x}", "details": json.dumps({"news2": i % 9, "model_risk": 0.1}),
        })
        messages.append(Input("audit.events", chain, i, None, out.getvalue()))
    return messages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--chains", type=int, default=3)
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "audit.json")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="clinops-audit-bench-"))
    store = ChdbStore(folder / "store")
    writer = ChainWriter(store, load_or_create_signer(folder / "keys"), checkpoint_every=10_000, checkpoint_interval_s=3600)

    written, writing_s, offsets = 0, 0.0, [0] * args.chains
    while written < args.rows:
        chain = (written // BATCH) % args.chains
        count = min(BATCH, args.rows - written)
        batch = encoded_batch(written, count, chain)
        for message_index, message in enumerate(batch):
            batch[message_index] = Input(message.topic, chain, offsets[chain] + message_index, None, message.value)
        offsets[chain] += count
        started = time.perf_counter()
        writer.write(chain, batch)
        writer.checkpoint(chain)
        writing_s += time.perf_counter() - started
        written += count
        if written % 500_000 == 0:
            print(f"  written {written:,} at {written / writing_s:,.0f} events/s", file=sys.stderr)
    for chain in range(args.chains):
        writer.checkpoint(chain, force=True)

    pseudonym = f"p-{12345:024x}"
    timings = []
    for _ in range(20):
        started = time.perf_counter()
        rows = store.execute(
            "SELECT occurred_at, action, details FROM audit_events "
            f"WHERE subject_type = 'patient' AND subject_id = '{pseudonym}' ORDER BY occurred_at"
        ).rows
        timings.append(time.perf_counter() - started)

    started = time.perf_counter()
    report = verify(store, trusted_public_keys(folder / "keys"))
    verify_s = time.perf_counter() - started

    result = {
        "rows": args.rows, "chains": args.chains,
        "writer_events_per_s": round(args.rows / writing_s),
        "timeline_rows": len(rows), "timeline_ms_median": round(statistics.median(timings) * 1000, 1),
        "timeline_ms_max": round(max(timings) * 1000, 1),
        "verify_s": round(verify_s, 1), "verify_ok": report.ok,
        "store_bytes": sum(p.stat().st_size for p in (folder / "store").rglob("*") if p.is_file()),
    }
    store.close()
    shutil.rmtree(folder, ignore_errors=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
