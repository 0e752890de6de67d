"""Read PhysioNet/CinC Challenge 2019 stays (``.psv`` files, one ICU hour per row).

Each file is one ICU stay: pipe-separated columns with a header, ``NaN`` where a value
was not measured. Only the columns the replay needs are kept: the eight vital signs,
Age, Gender, the unit flags, ICULOS (hours since ICU admission, from 1) and SepsisLabel
(1 from six hours before the clinical onset of sepsis onwards).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

# PhysioNet column -> vital sign field of the bedside event.
VITAL_COLUMNS: dict[str, str] = {
    "HR": "heart_rate",
    "O2Sat": "spo2",
    "Temp": "temperature",
    "SBP": "systolic_bp",
    "MAP": "mean_arterial_pressure",
    "DBP": "diastolic_bp",
    "Resp": "respiratory_rate",
    "EtCO2": "etco2",
}
REQUIRED_COLUMNS = (*VITAL_COLUMNS, "Age", "Gender", "Unit1", "Unit2", "ICULOS", "SepsisLabel")

# The challenge labels SepsisLabel = 1 from this many hours before clinical onset.
LABEL_LEAD_HOURS = 6


class StayFormatError(ValueError):
    """A ``.psv`` file lacks the header or columns of the challenge format."""


@dataclass(frozen=True)
class HourRow:
    """One parsed hourly row: the line number, ICU hour and vitals (None = not measured)."""

    line: int
    icu_hour: int
    vitals: dict[str, float | None]
    sepsis_label: int


@dataclass(frozen=True)
class MalformedRow:
    """A row that could not be parsed, kept so that it is dead-lettered, not dropped."""

    line: int
    reason: str
    text: str


@dataclass
class Stay:
    """One ICU stay, named by its file stem (such as ``p100001``)."""

    stay_id: str
    age: float | None = None
    sex: str | None = None
    unit: str = "ICU"
    rows: list[HourRow] = field(default_factory=list)
    malformed: list[MalformedRow] = field(default_factory=list)

    @property
    def onset_hour(self) -> int | None:
        """ICU hour of the clinical onset of sepsis, or None for a stay without sepsis."""
        for row in self.rows:
            if row.sepsis_label == 1:
                return row.icu_hour + LABEL_LEAD_HOURS
        return None

    @property
    def last_hour(self) -> int:
        return max((row.icu_hour for row in self.rows), default=0)


def _number(text: str) -> float | None:
    text = text.strip()
    if text in ("", "NaN", "nan"):
        return None
    value = float(text)  # raises ValueError for text that is not a number
    if math.isnan(value):
        return None
    return value


def parse_stay(path: Path) -> Stay:
    """Parse one ``.psv`` file.

    Raises StayFormatError when the header is missing or lacks a required column.
    A row with the wrong number of fields, a field that is not a number or no ICU hour
    becomes a MalformedRow. An empty line is skipped.

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "p000009.psv").write_text(
    ...     "HR|O2Sat|Temp|SBP|MAP|DBP|Resp|EtCO2|Age|Gender|Unit1|Unit2|ICULOS|SepsisLabel\\n"
    ...     "88|97|NaN|120|85|60|18|NaN|71.5|0|1|0|1|0\\n"
    ...     "91|x|NaN|120|85|60|18|NaN|71.5|0|1|0|2|0\\n")
    >>> stay = parse_stay(folder / "p000009.psv")
    >>> stay.sex, stay.unit, stay.rows[0].vitals["heart_rate"], stay.malformed[0].line
    ('F', 'MICU', 88.0, 3)
    """
    lines = path.read_text().splitlines()
    if not lines:
        raise StayFormatError(f"{path.name}: empty file, expected a PhysioNet 2019 header line")
    header = lines[0].strip().split("|")
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if missing:
        raise StayFormatError(f"{path.name}: header lacks columns {', '.join(missing)}")
    index = {name: header.index(name) for name in REQUIRED_COLUMNS}

    stay = Stay(stay_id=path.stem)
    for line_number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.rstrip("\n").split("|")
        if len(fields) != len(header):
            stay.malformed.append(MalformedRow(line_number, f"expected {len(header)} fields, got {len(fields)}", line))
            continue
        try:
            values = {name: _number(fields[i]) for name, i in index.items()}
        except ValueError as exc:
            stay.malformed.append(MalformedRow(line_number, f"a field is not a number: {exc}", line))
            continue
        if values["ICULOS"] is None:
            stay.malformed.append(MalformedRow(line_number, "ICULOS (ICU hour) is missing", line))
            continue

        if stay.age is None and values["Age"] is not None:
            stay.age = values["Age"]
        if stay.sex is None and values["Gender"] is not None:
            stay.sex = "M" if values["Gender"] == 1 else "F"
        if values["Unit1"] == 1:
            stay.unit = "MICU"
        elif values["Unit2"] == 1:
            stay.unit = "SICU"

        stay.rows.append(
            HourRow(
                line=line_number,
                icu_hour=int(values["ICULOS"]),
                vitals={field_name: values[column] for column, field_name in VITAL_COLUMNS.items()},
                sepsis_label=int(values["SepsisLabel"] or 0),
            )
        )
    return stay


def list_stays(folder: Path, limit: int | None = None) -> list[Path]:
    """Return the folder's ``.psv`` files in name order, the first ``limit`` of them."""
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder of PhysioNet .psv files")
    paths = sorted(folder.glob("*.psv"))
    if not paths:
        raise FileNotFoundError(f"no .psv files found in {folder}")
    return paths[:limit] if limit is not None else paths
