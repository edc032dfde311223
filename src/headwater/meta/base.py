"""The metadata index interface (index layer): what run processes write and the
client reads, whichever implementation keeps it.

The store's records are the source of truth; an index is a cache of them that
answers listings fast and can always be rebuilt (``reindex``). The SQLite index
(``headwater.meta.index.Index``) is the built-in implementation, chosen as
``--metadata=local``; a ``headwater.metadata_providers`` plugin may supply another
(see ``open_index``). Every implementation passes tests/meta/test_index_contract.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from ..store.records import RecordStore
    from .index import RunRow, TaskRow


@runtime_checkable
class MetadataIndex(Protocol):
    """A queryable cache of run and attempt records.

    Writers (the run process) call ``add_run`` when a run starts,
    ``upsert_attempts`` as its tasks commit, ``set_tags``/``sync_tags`` when tags
    change and ``end_run`` when it ends. Readers list with ``flows``, ``runs``,
    ``steps``, ``tasks`` and look up with ``run``, ``task``, ``attempt_rows``;
    runs come newest first.
    """

    def add_run(self, run_record: dict[str, Any]) -> None: ...

    def end_run(self, flow: str, run_id: str, status: str, finished_at: float) -> None: ...

    def upsert_attempts(self, rows: Iterable[dict[str, Any]]) -> None: ...

    def set_tags(self, flow: str, run_id: str, tags: Sequence[str]) -> None: ...

    def sync_tags(self, flow: str, run_id: str, records: RecordStore) -> list[str]: ...

    def reindex(self, records: RecordStore, *,
                on_progress: Callable[[int, int], None] | None = None) -> dict[str, int]:
        """Rebuild from the records; ``on_progress(done, total)`` as runs are read (an index
        that cannot tell may never call it)."""
        ...

    def flows(self) -> list[str]: ...

    def runs(self, flow: str, *, tags: Sequence[str] = (), limit: int | None = None) -> list[RunRow]: ...

    def run(self, flow: str, run_id: str) -> RunRow | None: ...

    def steps(self, flow: str, run_id: str) -> list[str]: ...

    def tasks(self, flow: str, run_id: str, step: str) -> list[TaskRow]: ...

    def task(self, flow: str, run_id: str, step: str, task_id: str) -> TaskRow | None: ...

    def attempt_rows(self, flow: str, run_id: str, step: str, task_id: str) -> list[TaskRow]: ...

    def close(self) -> None: ...

    def __enter__(self) -> MetadataIndex: ...

    def __exit__(self, *exc: object) -> None: ...
