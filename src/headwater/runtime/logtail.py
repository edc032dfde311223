"""A store log seen as a file the scheduler tails (runtime layer).

The scheduler reads each running task's log with ``.read()``; for a task that
ships its log to the store (a remote worker) this wraps ``StoreLogTail``,
asking the store at most every ``INTERVAL`` seconds while the task runs.
"""

from __future__ import annotations

import time
from typing import Any

from ..store.logsink_standin import logsink_module

#: Seconds between two looks at a running task's log in the store.
INTERVAL = 0.5


class StoreTail:
    """``read()`` returns what the store's copy of a log gained since the last look."""

    def __init__(self, objects: Any, key: str) -> None:
        self._tail = logsink_module().StoreLogTail(objects, key)
        self._next = 0.0

    def read(self) -> bytes:
        now = time.monotonic()
        if now < self._next:
            return b""
        self._next = now + INTERVAL
        return self._tail.read_new()

    def read_final(self) -> bytes:
        """Everything left, now (the task has ended and its shipper finished)."""
        return self._tail.read_new()

    def close(self) -> None:
        """Nothing to release."""
