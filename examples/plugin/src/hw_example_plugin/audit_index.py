"""A metadata provider: headwater's SQLite index, plus an audit trail of every write.

Chosen with ``python flow.py --metadata=audit run`` (or HEADWATER_DEFAULT_METADATA=audit),
and read back with ``headwater.metadata("audit@/path/to/.headwater")``. Each write
appends one JSON line to ``<datastore root>/audit.jsonl``.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from headwater.meta import Index


class AuditIndex:
    """Delegates to the SQLite index; records who wrote what, and when."""

    def __init__(self, root: str, records: Any = None) -> None:
        self._index = Index(root, records=records)
        self._log = os.path.join(root, "audit.jsonl")

    def _audit(self, op: str, **fields: Any) -> None:
        line = json.dumps({"op": op, "at": time.time(), "pid": os.getpid(), **fields})
        with open(self._log, "a") as f:
            f.write(line + "\n")

    # -- writes: audited ------------------------------------------------------------------
    def add_run(self, run_record: dict[str, Any]) -> None:
        self._audit("add_run", flow=run_record["flow"], run_id=str(run_record["run_id"]))
        self._index.add_run(run_record)

    def end_run(self, flow: str, run_id: str, status: str, finished_at: float) -> None:
        self._audit("end_run", flow=flow, run_id=run_id, status=status)
        self._index.end_run(flow, run_id, status, finished_at)

    def upsert_attempts(self, rows: Any) -> None:
        rows = list(rows)
        self._audit("upsert_attempts", tasks=[f"{r['step']}/{r['task_id']}" for r in rows])
        self._index.upsert_attempts(rows)

    def set_tags(self, flow: str, run_id: str, tags: Any) -> None:
        self._audit("set_tags", flow=flow, run_id=run_id, tags=list(tags))
        self._index.set_tags(flow, run_id, tags)

    def sync_tags(self, flow: str, run_id: str, records: Any) -> list[str]:
        return self._index.sync_tags(flow, run_id, records)

    def reindex(self, records: Any) -> dict[str, int]:
        self._audit("reindex")
        return self._index.reindex(records)

    # -- reads: passed through ------------------------------------------------------------
    def flows(self) -> list[str]:
        return self._index.flows()

    def runs(self, flow: str, *, tags: Any = (), limit: int | None = None) -> list[Any]:
        return self._index.runs(flow, tags=tags, limit=limit)

    def run(self, flow: str, run_id: str) -> Any:
        return self._index.run(flow, run_id)

    def steps(self, flow: str, run_id: str) -> list[str]:
        return self._index.steps(flow, run_id)

    def tasks(self, flow: str, run_id: str, step: str) -> list[Any]:
        return self._index.tasks(flow, run_id, step)

    def task(self, flow: str, run_id: str, step: str, task_id: str) -> Any:
        return self._index.task(flow, run_id, step, task_id)

    def attempt_rows(self, flow: str, run_id: str, step: str, task_id: str) -> list[Any]:
        return self._index.attempt_rows(flow, run_id, step, task_id)

    def close(self) -> None:
        self._index.close()

    def __enter__(self) -> "AuditIndex":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
