"""``Runner`` edge cases (issue 7): ``run_id_file`` and the errors wrong arguments raise, in both engines."""

from __future__ import annotations

from typing import Any

import pytest

from compat.harness import HERE, normalize

# question -> "DIFF: ..." for a known difference (a strict xfail); none left.
KNOWN: dict[str, str] = {}


@pytest.fixture(scope="module")
def answers(engines: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name, eng in engines.items():
        eng.flow_file("params_flow.py")
        out[name] = normalize(eng.script(HERE / "runner_errors_probe.py", timeout=300))
    return out


def test_every_question_was_answered(answers: dict[str, Any]) -> None:
    assert set(answers["headwater"]) == set(answers["metaflow"])
    assert answers["metaflow"]["run_id_file"] == {"status": "successful", "file_holds_run_id": True}
    assert answers["metaflow"]["unknown_run_argument"]["raises"] == "ValueError"
    assert answers["metaflow"]["int_parameter_given_text"]["raises"] == "TypeError"


@pytest.mark.parametrize("question", [
    pytest.param(q, marks=[pytest.mark.xfail(strict=True, reason=KNOWN[q])] if q in KNOWN else [])
    for q in ("run_id_file", "unknown_run_argument", "unknown_runner_argument", "int_parameter_given_text",
              "bool_parameter_given_text", "max_workers_given_text", "tags_given_a_string", "missing_flow_file")])
def test_same_answer(answers: dict[str, Any], question: str) -> None:
    mf, hw = answers["metaflow"][question], answers["headwater"][question]
    if isinstance(mf, dict) and "raises" in mf:
        # headwater may raise its own subclass, so `except <Metaflow's class>` still catches it.
        assert isinstance(hw, dict) and mf["raises"] in hw.get("mro", []), (hw, mf)
    else:
        assert hw == mf
