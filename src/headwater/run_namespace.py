"""The client namespace a run chose for its tasks (``run --namespace``).

The executor sets it around each step and the client's default namespace reads
it: a leaf both layers import, so the runtime never imports the client and the
client never imports the runtime or the flow layer.
"""

from __future__ import annotations

_chosen: tuple[str | None, ...] = ()


def choose(chosen: tuple[str | None, ...]) -> None:
    """Set, for the task now running, ``(ns,)`` (``None`` is the global namespace), or ``()`` for none."""
    global _chosen
    _chosen = chosen


def chosen() -> tuple[str | None, ...]:
    """``(ns,)`` while a task of a ``run --namespace`` runs in this process, else ``()``."""
    return _chosen
