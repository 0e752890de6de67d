"""The leak scan's log search: the project's logs, not the broker's data files."""

from __future__ import annotations

from pathlib import Path

from clinops.privacy_scan import scan_logs

IDENTIFIERS = {"H55501234": "record number"}


def test_broker_data_files_are_skipped(tmp_path: Path) -> None:
    segment = tmp_path / "kafka" / "data" / "bedside.vitals-0" / "00000000000000000000.log"
    segment.parent.mkdir(parents=True)
    segment.write_bytes(b"\x00H55501234\x00")
    (tmp_path / "worker.log").write_text("scored 12 events\n")

    findings, files = scan_logs(tmp_path, IDENTIFIERS, skip=tmp_path / "kafka" / "data")
    assert findings == []
    assert files == 1


def test_leak_in_worker_log_is_found(tmp_path: Path) -> None:
    (tmp_path / "worker.log").write_text("rejected H55501234\n")
    findings, _ = scan_logs(tmp_path, IDENTIFIERS, skip=tmp_path / "kafka" / "data")
    assert [finding.kind for finding in findings] == ["record number"]
    assert "H55501234" not in findings[0].line()
