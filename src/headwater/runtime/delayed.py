"""Attempts waiting for their retry time (orchestration layer): a heap ordered by
due time, then by the order they were pushed, so specs themselves are never compared."""

from __future__ import annotations

import heapq
import itertools

from .taskspec import TaskSpec


class DelayedQueue:
    """Task specs that become ready at a ``time.monotonic()`` instant; equal instants keep push order."""

    __slots__ = ("_heap", "_seq")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, TaskSpec]] = []
        self._seq = itertools.count()  # a unique tie-breaker: TaskSpecs have no order

    def __bool__(self) -> bool:
        return bool(self._heap)

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, at: float, spec: TaskSpec) -> None:
        """Make ``spec`` ready at ``at``."""
        heapq.heappush(self._heap, (at, next(self._seq), spec))

    def next_at(self) -> float:
        """When the earliest spec becomes ready (the queue must not be empty)."""
        return self._heap[0][0]

    def pop_due(self, now: float) -> list[TaskSpec]:
        """The specs ready at ``now``, earliest first, removed from the queue."""
        due = []
        while self._heap and self._heap[0][0] <= now:
            due.append(heapq.heappop(self._heap)[2])
        return due

    def clear(self) -> None:
        self._heap.clear()
