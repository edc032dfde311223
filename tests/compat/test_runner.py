"""``Runner`` gives the caller the same results in both engines."""

from __future__ import annotations

from typing import Any

import pytest

from compat.harness import HERE, normalize


@pytest.fixture(scope="module")
def runner_results(engines: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name, eng in engines.items():
        eng.flow_file("params_flow.py")
        eng.flow_file("failing_flow.py")
        out[name] = normalize(eng.script(HERE / "runner_probe.py", timeout=300))
    return out


@pytest.mark.parametrize("case", ["params", "failing"])
def test_runner_result(runner_results: dict[str, Any], case: str) -> None:
    assert runner_results["headwater"][case] == runner_results["metaflow"][case]


def test_runner_passed_the_parameters(runner_results: dict[str, Any]) -> None:
    seen = runner_results["metaflow"]["params"]["end_data"]
    assert (seen["who"], seen["count"], seen["fruits"]) == ("runner", 3, ["a", "b"])
