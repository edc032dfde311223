"""The index layer (internal): a SQLite cache of the store's run and attempt
records that makes listings fast; rebuildable from the store at any time.
"""

from __future__ import annotations

from .index import Index, RunRow, TaskRow
from .liveness import run_is_dead, run_status

__all__ = ["Index", "RunRow", "TaskRow", "run_is_dead", "run_status"]
