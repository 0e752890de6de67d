"""Parsing PhysioNet 2019 .psv files: NaN, empty and malformed rows, onsets."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.sources.physionet import StayFormatError, list_stays, parse_stay

HEADER = "HR|O2Sat|Temp|SBP|MAP|DBP|Resp|EtCO2|BaseExcess|Age|Gender|Unit1|Unit2|HospAdmTime|ICULOS|SepsisLabel"


def write(tmp_path: Path, *rows: str, header: str = HEADER) -> Path:
    path = tmp_path / "p000001.psv"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_nan_and_empty_fields_are_missing(tmp_path: Path) -> None:
    stay = parse_stay(write(tmp_path, "NaN||36.5|NaN|NaN|NaN|18|NaN|NaN|64|1|NaN|NaN|-1.5|1|0"))
    vitals = stay.rows[0].vitals
    assert vitals["heart_rate"] is None
    assert vitals["spo2"] is None
    assert vitals["temperature"] == 36.5
    assert vitals["respiratory_rate"] == 18.0
    assert stay.sex == "M"
    assert stay.unit == "ICU"


def test_empty_lines_are_skipped(tmp_path: Path) -> None:
    stay = parse_stay(write(tmp_path, "80|97|NaN|120|80|60|16|NaN|NaN|64|0|0|1|-1|1|0", "", "82|97|NaN|120|80|60|16|NaN|NaN|64|0|0|1|-1|2|0"))
    assert [row.icu_hour for row in stay.rows] == [1, 2]
    assert stay.unit == "SICU"
    assert stay.malformed == []


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("80|97|NaN|120", "expected 16 fields, got 4"),
        ("80|ninety|NaN|120|80|60|16|NaN|NaN|64|0|1|0|-1|1|0", "not a number"),
        ("80|97|NaN|120|80|60|16|NaN|NaN|64|0|1|0|-1|NaN|0", "ICU hour"),
    ],
)
def test_malformed_rows_are_kept_with_reason(tmp_path: Path, row: str, reason: str) -> None:
    stay = parse_stay(write(tmp_path, "80|97|NaN|120|80|60|16|NaN|NaN|64|0|1|0|-1|1|0", row))
    assert len(stay.rows) == 1
    assert len(stay.malformed) == 1
    assert reason in stay.malformed[0].reason
    assert stay.malformed[0].line == 3


def test_missing_column_is_format_error(tmp_path: Path) -> None:
    with pytest.raises(StayFormatError, match="ICULOS"):
        parse_stay(write(tmp_path, "1|2", header="HR|Age"))


def test_empty_file_is_format_error(tmp_path: Path) -> None:
    path = tmp_path / "p000002.psv"
    path.write_text("")
    with pytest.raises(StayFormatError, match="empty file"):
        parse_stay(path)


def test_onset_is_six_hours_after_first_label(tmp_path: Path) -> None:
    rows = [f"80|97|NaN|120|80|60|16|NaN|NaN|64|0|1|0|-1|{hour}|{int(hour >= 4)}" for hour in range(1, 8)]
    stay = parse_stay(write(tmp_path, *rows))
    assert stay.onset_hour == 10
    assert stay.last_hour == 7


def test_stay_without_sepsis_has_no_onset(sample_dir: Path) -> None:
    stay = parse_stay(sample_dir / "p100001.psv")
    assert stay.onset_hour is None
    assert len(stay.rows) > 10


def test_list_stays_limit_and_errors(sample_dir: Path, tmp_path: Path) -> None:
    assert [p.name for p in list_stays(sample_dir, 2)] == ["p100001.psv", "p100002.psv"]
    with pytest.raises(FileNotFoundError, match="no .psv files found"):
        list_stays(tmp_path)
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        list_stays(tmp_path / "missing")
