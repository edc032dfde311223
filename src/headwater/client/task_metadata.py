"""A task's metadata in Metaflow's names and value formats (reading layer).

Metaflow registers, per attempt, entries such as ``attempt``, ``origin-run-id``,
``ds-root``, ``script-name``, ``foreach-stack`` and, when the attempt ends,
``attempt_ok`` and ``attempt-done``. headwater does not store them one by one:
they are derived here from the attempt records and the run record, so a task
still writes a single record.
"""

from __future__ import annotations

import os
from typing import Any

from ..store.taskmeta import CRASH_TYPE, TASK_TYPE_KEY

#: Metaflow's name for the entry that says whether an attempt succeeded, and its type.
ATTEMPT_OK = "attempt_ok"
_TYPES = {ATTEMPT_OK: "internal_attempt_status", "status": "attempt-status",
          "started_at": "attempt-time", "finished_at": "attempt-time"}
# Record metadata keys the derived entries below replace, or that only headwater uses.
_DERIVED = frozenset({"user", "origin_run_id", "origin_pathspec", "foreach-execution-path"})
# Names Metaflow spells with an underscore; every other key is spelled with hyphens.
_UNDERSCORED = frozenset({ATTEMPT_OK, "python_version", TASK_TYPE_KEY})

Entry = tuple[str, Any, int, str]  # (name, value, created_at in ms, type)


def _tag_value(tags: Any, prefix: str) -> str | None:
    for t in tags or ():
        if isinstance(t, str) and t.startswith(prefix):
            return t[len(prefix):]
    return None


def _name(key: str) -> str:
    return key if key in _UNDERSCORED else key.replace("_", "-")


def foreach_stack_value(stack: Any) -> list[str]:
    """``foreach-stack``: ``"<var>=<item repr>"`` per enclosing foreach, outermost first."""
    return [f"{f.get('var')}={f.get('value')}" for f in stack or () if f.get("var")]


def attempt_entries(rec: dict[str, Any], run_rec: dict[str, Any] | None, root: str) -> list[Entry]:
    """The metadata entries of one attempt record, in the order Metaflow registers them.

    What the record's own ``metadata`` says wins over a derived entry of the same name.
    """
    run_rec = run_rec or {}
    started, finished = rec.get("started_at"), rec.get("finished_at")
    t0 = int((started or 0.0) * 1000)
    t1 = int((finished or started or 0.0) * 1000)
    meta: dict[str, Any] = dict(rec.get("metadata") or {})
    attempt = str(rec.get("attempt", 0))
    system_tags = run_rec.get("system_tags")
    origin = meta.get("origin_pathspec")
    origin_parts = origin.split("/") if isinstance(origin, str) and origin.count("/") == 3 else None
    head: list[tuple[str, Any]] = [("user", str(meta.get("user") or run_rec.get("user") or "")),
                                   ("runtime", _tag_value(system_tags, "runtime:") or "dev")]
    for name, prefix in (("python_version", "python_version:"), ("headwater_version", "headwater_version:")):
        value = _tag_value(system_tags, prefix)
        if value is not None:
            head.append((name, value))
    script = run_rec.get("script")
    if script:
        head.append(("script-name", os.path.basename(script)))
    head += [("ds-type", "s3" if root.startswith("s3://") else "local"), ("ds-root", root), ("attempt", attempt),
             ("origin-run-id", str(run_rec.get("origin_run_id") or (origin_parts[1] if origin_parts else None)))]
    stack = rec.get("foreach_stack")
    if stack:
        head.append(("foreach-stack", foreach_stack_value(stack)))
        if meta.get("foreach-execution-path"):
            head.append(("foreach-execution-path", meta["foreach-execution-path"]))
    if origin_parts:
        head += [("origin-task-id", origin_parts[3]), ("origin-pathspec", origin)]
    own = [(_name(k), v) for k, v in meta.items() if k not in _DERIVED]
    recorded = {name for name, _ in own}
    out: list[Entry] = [(n, v, t0, n) for n, v in head if n not in recorded]
    out += [(n, v, t0, _TYPES.get(n, n)) for n, v in own]
    tail: list[tuple[str, Any, int]] = []
    # A process that died never registered its end (Metaflow writes neither entry then).
    died = (rec.get("exception") or {}).get("type") == CRASH_TYPE
    if finished is not None and not died:
        status = rec.get("status", "failed")
        tail += [(ATTEMPT_OK, str(status == "ok"), t1), ("attempt-done", attempt, t1), ("status", str(status), t1)]
    if started is not None:
        tail.append(("started_at", str(started), t0))
    if finished is not None:
        tail.append(("finished_at", str(finished), t1))
    out += [(n, v, at, _TYPES.get(n, n)) for n, v, at in tail if n not in recorded]
    return out
