"""A progress line for long-running commands, on standard error."""

from __future__ import annotations

import sys
import time
from typing import TextIO

BAR_WIDTH = 30
# Redraw at most this often on a terminal; elsewhere print one line per tenth.
REDRAW_INTERVAL_S = 0.2


class Progress:
    def __init__(self, total: int, label: str, stream: TextIO = sys.stderr) -> None:
        self.total = max(total, 1)
        self.label = label
        self.stream = stream
        self.tty = stream.isatty()
        self.started = time.monotonic()
        self._last_draw = 0.0
        self._last_tenth = -1

    def update(self, done: int, extra: str = "") -> None:
        fraction = min(1.0, done / self.total)
        now = time.monotonic()
        if self.tty:
            if now - self._last_draw < REDRAW_INTERVAL_S and done < self.total:
                return
            self._last_draw = now
            filled = int(fraction * BAR_WIDTH)
            bar = "#" * filled + "-" * (BAR_WIDTH - filled)
            self.stream.write(f"\r{self.label} [{bar}] {done}/{self.total} {self._rate(done, now)} {extra}".rstrip() + " ")
            self.stream.flush()
            return
        tenth = int(fraction * 10)
        if tenth > self._last_tenth:
            self._last_tenth = tenth
            self.stream.write(f"{self.label}: {done}/{self.total} ({fraction:.0%}) {self._rate(done, now)} {extra}".rstrip() + "\n")
            self.stream.flush()

    def _rate(self, done: int, now: float) -> str:
        elapsed = max(now - self.started, 1e-6)
        return f"{done / elapsed:,.0f}/s"

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
