"""Dump what a finished run looks like through an engine's client, as JSON (compat probe).

Run with either engine's Python: ``python probe.py ENGINE FLOW [RUN_ID]`` where ENGINE is
``metaflow`` or ``headwater``. It imports only that engine's public client API, so the two
JSON documents it prints can be compared as they are, after the harness's explicit
normalisation (``harness.normalize``). Ids never appear as values: tasks are described by
what they hold and sorted by it, parents and children by their step names.
"""

from __future__ import annotations

import importlib
import json
import sys
from typing import Any

# Task metadata keys the probe reports when present; the comparison decides which must match.
METADATA_KEYS = ("user", "attempt", "attempt_ok", "attempt-done", "origin-run-id", "script-name",
                 "foreach-stack", "foreach-execution-path", "python_version", "runtime", "ds-type")


def jsonable(value: Any) -> Any:
    """A JSON value for an artifact: containers recursively, anything else by type and text."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, bytes):
        return {"__bytes__": value.decode("latin-1")}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return {"__set__": sorted(json.dumps(jsonable(v), sort_keys=True) for v in value)}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, BaseException) or hasattr(value, "exception") and hasattr(value, "stacktrace"):
        return {"__exception__": type(value).__name__, "type": getattr(value, "type", None)}
    return {"__type__": type(value).__name__, "str": str(value)}


def exception_of(task: Any) -> Any:
    exc = task.exception
    if exc is None:
        return None
    return {"class": type(exc).__name__, "type": getattr(exc, "type", None)}


def task_doc(task: Any) -> dict[str, Any]:
    meta = task.metadata_dict
    artifacts = {}
    for art in task:
        artifacts[art.id] = jsonable(art.data)
    return {
        "successful": bool(task.successful),
        "finished": bool(task.finished),
        "index": task.index,
        "current_attempt": task.current_attempt,
        "id_is_int": task.id.isdigit(),
        "artifacts": dict(sorted(artifacts.items())),
        "stdout": task.stdout,
        "stderr": task.stderr,
        "exception": exception_of(task),
        "parents": sorted(p.split("/")[2] for p in task.parent_task_pathspecs),
        "children": sorted(c.split("/")[2] for c in task.child_task_pathspecs),
        "metadata": {k: meta[k] for k in METADATA_KEYS if k in meta},
    }


def run_doc(run: Any) -> dict[str, Any]:
    steps = {}
    for s in run:
        tasks = [task_doc(t) for t in s]
        tasks.sort(key=lambda d: json.dumps(d, sort_keys=True, default=str))
        steps[s.id] = tasks
    return {
        "id_is_int": run.id.isdigit(),
        "successful": bool(run.successful),
        "finished": bool(run.finished),
        "user_tags": sorted(run.user_tags),
        "system_tags": sorted(run.system_tags),
        "has_end_task": run.end_task is not None,
        "steps": dict(sorted(steps.items())),
    }


def main(argv: list[str]) -> None:
    engine, flow_name = argv[0], argv[1]
    mod = importlib.import_module(engine)
    mod.namespace("user:tester")
    flow = mod.Flow(flow_name)
    run = mod.Run(f"{flow_name}/{argv[2]}") if len(argv) > 2 else flow.latest_run
    doc = {"run_id": run.id, "run": run_doc(run),
           "flow_runs": len(list(flow.runs())), "latest_is_this": flow.latest_run.id == run.id}
    json.dump(doc, sys.stdout, sort_keys=True, default=str)


if __name__ == "__main__":
    main(sys.argv[1:])
