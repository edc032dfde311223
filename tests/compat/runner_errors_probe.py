"""Drive ``params_flow.py`` with an engine's ``Runner`` in ways users get wrong; print the outcomes as JSON.

``python runner_errors_probe.py ENGINE``, run in a directory holding ``params_flow.py``
(imports already switched). Each answer is a value or ``{"raises": class, "mro": [names]}``.
"""

from __future__ import annotations

import importlib
import json
import sys
from typing import Any, Callable


def ask(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except Exception as e:  # the question is what the caller would catch
        return {"raises": type(e).__name__, "mro": [c.__name__ for c in type(e).__mro__]}


def main(engine: str) -> None:
    mod = importlib.import_module(engine)

    def run(top: dict[str, Any] | None = None, **kwargs: Any) -> Callable[[], Any]:
        def go() -> Any:
            with mod.Runner("params_flow.py", show_output=False, **(top or {})) as runner:
                return runner.run(**kwargs).status
        return go

    def with_id_file() -> Any:
        with mod.Runner("params_flow.py", show_output=False) as runner:
            result = runner.run(run_id_file="given-run-id.txt")
        with open("given-run-id.txt") as f:
            return {"status": result.status, "file_holds_run_id": f.read().strip() == result.run.id}

    def missing_file() -> Any:
        with mod.Runner("no_such_flow.py", show_output=False) as runner:
            return runner.run().status

    questions = {
        "run_id_file": with_id_file,
        "unknown_run_argument": run(nosuch=1),
        "unknown_runner_argument": run({"nosuch_top": 1}),
        "int_parameter_given_text": run(count="abc"),
        "bool_parameter_given_text": run(loud="maybe"),
        "max_workers_given_text": run(max_workers="two"),
        "tags_given_a_string": run(tags="x"),
        "missing_flow_file": missing_file,
    }
    json.dump({name: ask(fn) for name, fn in questions.items()}, sys.stdout, sort_keys=True, default=repr)


if __name__ == "__main__":
    main(sys.argv[1])
