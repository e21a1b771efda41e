"""A bounded hand-over from a producing thread to a reader that may stop reading early.

The producer blocks while the reader is behind (memory stays a few items), and a producer blocked or
about to put learns that the reader has stopped, so its thread ends instead of waiting forever."""

from __future__ import annotations

import queue
import threading
from typing import Any


class Handover:
    def __init__(self, maxsize: int):
        self._items: queue.Queue = queue.Queue(maxsize=maxsize)
        self._stopped = threading.Event()

    def put(self, item: Any) -> bool:
        """Hand `item` over, waiting for room; False (and nothing handed over) once the reader stopped."""
        while not self._stopped.is_set():
            try:
                self._items.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def get(self) -> Any:
        return self._items.get()

    def stop(self) -> None:
        """The reader is done: every put from now on (and a waiting one) returns False."""
        self._stopped.set()
