"""``resume`` after a failure: the same clones, re-runs and exit codes in both engines."""

from __future__ import annotations

from typing import Any, Callable

import pytest

from compat.conftest import sort_tasks
from compat.harness import normalize
from compat.facets import FACETS


@pytest.fixture(scope="module")
def resumed(both: Callable[..., Any], each: Callable[..., Any]) -> dict[str, Any]:
    failed = both("failing_flow.py", "run")
    assert failed.mf.returncode == failed.hw.returncode == 1
    fixes = [eng.workdir / "FIX" for eng in failed.engines.values()]
    for fix in fixes:
        fix.write_text("")
    try:
        results = each("failing_flow.py", "resume", "--origin-run-id", "RID", run=failed)
    finally:
        for fix in fixes:
            fix.unlink()
    docs = {}
    for name, res in results.items():
        assert res.returncode == 0, res.stderr[-3000:]
        docs[name] = sort_tasks(normalize(failed.engines[name].probe("FailingFlow", res.run_id)))
    return docs


@pytest.mark.parametrize("facet", list(FACETS))
def test_resumed_run_matches(resumed: dict[str, Any], facet: str) -> None:
    view = FACETS[facet]
    assert view(resumed["headwater"], "resume") == view(resumed["metaflow"], "resume")


def test_resumed_run_reran_from_the_failed_step(resumed: dict[str, Any]) -> None:
    end = resumed["metaflow"]["run"]["steps"]["end"][0]["artifacts"]
    assert end["result"] == ["kept", True] and end["resumed"] is True
