"""A one-line progress bar on a terminal's stderr; silent when stderr is a file or pipe."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, total: int | None, label: str, stream: TextIO | None = None, min_items: int = 20):
        self.stream = stream or sys.stderr
        self.total, self.label, self.done = total, label, 0
        self.enabled = self.stream.isatty() and (total is None or total >= min_items)
        self._last = 0.0

    def advance(self, count: int = 1) -> None:
        self.done += count
        now = time.monotonic()
        if self.enabled and (now - self._last > 0.1 or self.done == self.total):
            self._last = now
            self.stream.write("\r" + self._line())
            self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\r" + self._line() + "\n")

    def _line(self) -> str:
        if not self.total:
            return f"{self.label}: {self.done}"
        filled = int(30 * self.done / self.total)
        return f"{self.label} [{'#' * filled}{'.' * (30 - filled)}] {self.done}/{self.total}"
