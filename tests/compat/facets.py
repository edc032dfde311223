"""Views of a probe document that the differential tests compare, and what they forgive.

A facet takes a normalised probe document (``probe.py`` + ``harness.normalize``) and a
case name, and returns the part one test compares: per step, the tasks' views sorted.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable

# Deliberate differences, per (case, step): task fields left out of the comparison.
FORGIVE: dict[tuple[str, str], set[str]] = {
    # A local @parallel gang: Metaflow runs the workers as children of the control task and its
    # log capture puts every node's output in the control task's stdout (the workers' is empty);
    # headwater keeps each node's output in its own task, as on a cluster in both engines
    # (docs/compat.md). test_issue7_runs.py checks that the gang printed the same lines.
    ("parallel", "train"): {"stdout"},
}

# Task metadata keys both engines have today; the rest are compared in test_metadata_keys.
COMMON_METADATA = ("user", "attempt", "attempt_ok")

# Lines of a failed task's stderr that are the engine's, not the user's: Metaflow prints its own
# CLI frames in the traceback and a "Task failed." trailer.
_ENGINE_STDERR = re.compile(r"^(Traceback \(most recent call last\):|\s+.*|Task failed\.|<flow .*> failed:|)$")


def _user_stderr(text: str) -> list[str]:
    return [line for line in text.splitlines() if not _ENGINE_STDERR.match(line)]


def per_task(doc: dict[str, Any], case: str, pick: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    """``pick`` applied to every task (minus the fields forgiven for ``case``), per step."""
    out = {}
    for step, tasks in doc["run"]["steps"].items():
        skip = FORGIVE.get((case, step), set())
        views = [pick({k: v for k, v in t.items() if k not in skip}) for t in tasks]
        out[step] = sorted(views, key=lambda v: json.dumps(v, sort_keys=True))
    return out


FACETS: dict[str, Callable[[dict[str, Any], str], Any]] = {
    "run": lambda d, c: {k: v for k, v in d["run"].items() if k != "steps"} | {"steps": sorted(d["run"]["steps"])},
    "status": lambda d, c: per_task(d, c, lambda t: {k: t.get(k) for k in (
        "successful", "finished", "index", "current_attempt", "id_is_int", "exception")}),
    "artifacts": lambda d, c: per_task(d, c, lambda t: t["artifacts"]),
    "lineage": lambda d, c: per_task(d, c, lambda t: {"parents": t["parents"], "children": t["children"]}),
    "logs": lambda d, c: per_task(d, c, lambda t: {"stdout": t.get("stdout"),
                                                    "stderr": _user_stderr(t["stderr"])}),
    "metadata": lambda d, c: per_task(d, c, lambda t: {k: t.get("metadata", {}).get(k) for k in COMMON_METADATA}),
}


def case_facet_params(cases: Any, known: dict[tuple[str, str], str]) -> list[Any]:
    """One pytest param per (case, facet); a known difference (``"DIFF: ..."``) is a strict xfail."""
    import pytest

    out = []
    for case in cases:
        for facet in FACETS:
            reason = known.get((case, facet))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            out.append(pytest.param(case, facet, marks=marks, id=f"{case}-{facet}"))
    return out
