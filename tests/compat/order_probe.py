"""The order an engine's client iterates in, as JSON (compat probe for issue 7).

``python order_probe.py ENGINE FLOW RUN_ID STEP``: the steps of the run as ``for s in run``
yields them, the foreach indexes of STEP's tasks as ``for t in step`` yields them, and
whether ``for r in flow`` yields runs newest first.
"""

from __future__ import annotations

import importlib
import json
import sys


def main(engine: str, flow: str, run_id: str, step: str) -> None:
    mod = importlib.import_module(engine)
    mod.namespace("user:tester")
    run = mod.Run(f"{flow}/{run_id}")
    run_ids = [int(r.id) for r in mod.Flow(flow)]
    json.dump({
        "steps": [s.id for s in run],
        "task_indexes": [t.index for t in run[step]],
        "runs_newest_first": run_ids == sorted(run_ids, reverse=True),
        "runs": len(run_ids),
        "latest_first": run_ids[0] == int(mod.Flow(flow).latest_run.id),
    }, sys.stdout)


if __name__ == "__main__":
    main(*sys.argv[1:5])
