"""Ask an engine's client a fixed list of questions about one run; print the answers as JSON.

``python client_probe.py ENGINE FLOW RUN_ID``. Each answer is a value or ``{"raises": class,
"mro": [class names]}``, so what raises in one engine and not in the other shows up in the
comparison (and an error that subclasses Metaflow's can still be caught the same way).
"""

from __future__ import annotations

import importlib
import json
import sys
from typing import Any, Callable


def ask(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except Exception as e:  # the question is what the user would see: the class of the error
        return {"raises": type(e).__name__, "mro": [c.__name__ for c in type(e).__mro__]}


def questions(mf: Any, flow: str, run_id: str) -> dict[str, Callable[[], Any]]:
    path = f"{flow}/{run_id}"

    def in_ns(ns: Any, fn: Callable[[], Any]) -> Callable[[], Any]:
        def go() -> Any:
            mf.namespace(ns)
            try:
                return fn()
            finally:
                mf.namespace("user:tester")
        return go

    return {
        "get_namespace": lambda: mf.get_namespace(),
        "default_namespace": lambda: mf.default_namespace(),
        "get_metadata_kind": lambda: mf.get_metadata().split("@")[0],
        "flow_ids": lambda: sorted(f.id for f in mf.Metaflow().flows if f.id == flow),
        "runs_in_my_ns": lambda: len(list(mf.Flow(flow))),
        "runs_global": in_ns(None, lambda: len(list(mf.Flow(flow)))),
        "run_other_user": in_ns("user:nobody", lambda: mf.Run(path).id == run_id),
        "flow_other_user_latest": in_ns("user:nobody", lambda: mf.Flow(flow).latest_run),
        "runs_by_tag": lambda: [r.id == run_id for r in mf.Flow(flow).runs("first")],
        "runs_by_missing_tag": lambda: len(list(mf.Flow(flow).runs("no-such-tag"))),
        "latest_successful": lambda: mf.Flow(flow).latest_successful_run.id == run_id,
        "run_data_message": lambda: mf.Run(path).data.message,
        "run_getitem_step": lambda: mf.Run(path)["start"].id,
        "step_task_data": lambda: mf.Run(path)["start"].task.data.message,
        "task_contains": lambda: ["message" in mf.Run(path)["start"].task, "nope" in mf.Run(path)["start"].task],
        "artifact_data": lambda: mf.Run(path)["start"].task["message"].data,
        "artifact_pathspec_parts": lambda: len(mf.Run(path)["start"].task["message"].pathspec.split("/")),
        "path_components": lambda: len(mf.Run(path)["end"].task.path_components),
        "parent_of_step": lambda: mf.Run(path)["end"].parent.id == run_id,
        "run_in_steps": lambda: sorted(s.id for s in mf.Run(path)),
        "missing_run": lambda: mf.Run(f"{flow}/999"),
        "missing_step": lambda: mf.Run(path)["nosuch"],
        "missing_flow": lambda: mf.Flow("NoSuchFlow"),
        "bad_pathspec": lambda: mf.Task(f"{flow}/{run_id}"),
        "step_in_run": lambda: "start" in mf.Run(path),
        "run_code": lambda: mf.Run(path).code is None,
        "is_in_namespace": lambda: mf.Run(path).is_in_namespace(),
    }


def main(engine: str, flow: str, run_id: str) -> None:
    mf = importlib.import_module(engine)
    mf.namespace("user:tester")
    answers = {name: ask(fn) for name, fn in questions(mf, flow, run_id).items()}
    json.dump(answers, sys.stdout, sort_keys=True, default=repr)


if __name__ == "__main__":
    main(*sys.argv[1:4])
