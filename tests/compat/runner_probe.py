"""Drive flows with an engine's ``Runner`` and print what the caller sees, as JSON.

``python runner_probe.py ENGINE``, run in a directory holding ``params_flow.py`` and
``failing_flow.py`` (imports already switched to ENGINE).
"""

from __future__ import annotations

import importlib
import json
import sys
from typing import Any


def summary(result: Any) -> dict[str, Any]:
    run = result.run
    return {"status": result.status, "returncode": result.returncode,
            "run_successful": run.successful, "run_id_matches": run.id == result.run.pathspec.split("/")[1],
            "user_tags": sorted(run.user_tags), "end_data": run.data.seen if run.successful else None}


def main(engine: str) -> None:
    mod = importlib.import_module(engine)
    out = {}
    with mod.Runner("params_flow.py", show_output=False) as runner:
        out["params"] = summary(runner.run(who="runner", count=3, fruits="a,b", tags=["via-runner"]))
    with mod.Runner("failing_flow.py", show_output=False) as runner:
        out["failing"] = summary(runner.run())
    json.dump(out, sys.stdout, sort_keys=True, default=repr)


if __name__ == "__main__":
    main(sys.argv[1])
