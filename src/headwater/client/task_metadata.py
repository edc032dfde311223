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

#: Metaflow's name for the entry that says whether an attempt succeeded, and its type.
ATTEMPT_OK = "attempt_ok"
_TYPES = {ATTEMPT_OK: "internal_attempt_status", "status": "attempt-status",
          "started_at": "attempt-time", "finished_at": "attempt-time"}
# Record metadata keys the derived entries below replace, or that only headwater uses.
_DERIVED = frozenset({"user", "origin_run_id", "origin_pathspec", "foreach-execution-path"})
# Names Metaflow spells with an underscore; every other key is spelled with hyphens.
_UNDERSCORED = frozenset({ATTEMPT_OK, "python_version"})

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
    """The metadata entries of one attempt record, in the order Metaflow registers them."""
    run_rec = run_rec or {}
    started, finished = rec.get("started_at"), rec.get("finished_at")
    t0 = int((started or 0.0) * 1000)
    t1 = int((finished or started or 0.0) * 1000)
    meta: dict[str, Any] = dict(rec.get("metadata") or {})
    attempt = str(rec.get("attempt", 0))
    system_tags = run_rec.get("system_tags")
    out: list[Entry] = [("user", str(meta.get("user") or run_rec.get("user") or ""), t0, "user"),
                        ("runtime", _tag_value(system_tags, "runtime:") or "dev", t0, "runtime")]
    for name, prefix in (("python_version", "python_version:"), ("headwater_version", "headwater_version:")):
        value = _tag_value(system_tags, prefix)
        if value is not None:
            out.append((name, value, t0, name))
    script = run_rec.get("script")
    if script:
        out.append(("script-name", os.path.basename(script), t0, "script-name"))
    out += [("ds-type", "s3" if root.startswith("s3://") else "local", t0, "ds-type"),
            ("ds-root", root, t0, "ds-root"),
            ("attempt", attempt, t0, "attempt"),
            ("origin-run-id", str(run_rec.get("origin_run_id")), t0, "origin-run-id")]
    stack = rec.get("foreach_stack")
    if stack:
        out.append(("foreach-stack", foreach_stack_value(stack), t0, "foreach-stack"))
        path = meta.get("foreach-execution-path")
        if path:
            out.append(("foreach-execution-path", path, t0, "foreach-execution-path"))
    out += [(_name(k), v, t0, _name(k)) for k, v in meta.items() if k not in _DERIVED]
    origin = meta.get("origin_pathspec")
    if isinstance(origin, str):
        out.append(("origin-pathspec", origin, t0, "origin-pathspec"))
    # A process that died never registered its end (Metaflow writes neither entry then).
    died = (rec.get("exception") or {}).get("type") == "TaskCrashed"
    if finished is not None and not died:
        status = rec.get("status", "failed")
        out += [(ATTEMPT_OK, str(status == "ok"), t1, _TYPES[ATTEMPT_OK]),
                ("attempt-done", attempt, t1, "attempt-done"),
                ("status", str(status), t1, _TYPES["status"])]
    if started is not None:
        out.append(("started_at", str(started), t0, _TYPES["started_at"]))
    if finished is not None:
        out.append(("finished_at", str(finished), t1, _TYPES["finished_at"]))
    return out
