"""docs/compat.md lists all of Metaflow's surface, and its statuses match headwater (compat_table.py)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from compat import compat_table
from compat.compat_table import DOC, Row, headwater_has, parse, problems, render, rows


@pytest.fixture(scope="module")
def surfaces(engines: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    return compat_table.read_surfaces(engines["metaflow"], engines["headwater"])


def test_metaflow_surface_is_the_one_documented(surfaces: tuple[dict[str, Any], dict[str, Any]]) -> None:
    mf, _ = surfaces
    # A sample of what the reference lists, so an introspection that silently finds nothing fails.
    assert {"FlowSpec", "Parameter", "Runner", "namespace", "cards"} <= set(mf["names"])
    assert mf["step_decorators"]["retry"] == {"minutes_between_retries": "'2'", "times": "'3'"}
    assert {"run", "resume", "dump", "logs show", "tag list", "card view"} <= set(mf["cli"])
    assert "--max-workers" in mf["cli"]["run"]["options"]


def test_doc_agrees_with_both_engines(surfaces: tuple[dict[str, Any], dict[str, Any]]) -> None:
    mf, hw = surfaces
    found = problems(mf, hw, DOC.read_text())
    assert not found, ("docs/compat.md disagrees with the engines; run "
                       "`python tests/compat/compat_table.py --write` and review:\n" + "\n".join(found[:40]))


def test_doc_is_what_the_generator_writes(surfaces: tuple[dict[str, Any], dict[str, Any]]) -> None:
    mf, hw = surfaces
    text = DOC.read_text()
    assert render(mf, hw, text) == text


# The checker itself, on a tiny made-up surface: each rule must be able to fail.
MF = {"names": ["FlowSpec", "S3"], "step_decorators": {"retry": {"times": "'3'"}}, "flow_decorators": {},
      "cli": {"": {"hidden": False, "options": {"--quiet": False}}, "run": {"hidden": False, "options": {}}},
      "client": {"Run": ["data"]}, "exceptions": []}
HW = {"names": ["FlowSpec"], "step_decorators": {"retry": {"times": "3"}}, "flow_decorators": {},
      "cli": {"": {"hidden": False, "options": {"--quiet": False}}, "run": {"hidden": False, "options": {}}},
      "client": {"Run": ["data"]}, "exceptions": []}


def test_headwater_has_compares_defaults_and_presence() -> None:
    assert headwater_has(HW, Row("names", "FlowSpec", "")) == "same"
    assert headwater_has(HW, Row("names", "S3", "")) is None
    assert headwater_has(HW, Row("step", "@retry.times", "'3'")) == "differs"
    assert headwater_has(HW, Row("cli", "(top) --quiet", "")) == "same"
    assert headwater_has(HW, Row("cli", "run --tag", "")) is None


@pytest.mark.parametrize("edit,complaint", [
    (lambda t: t.replace("| `S3` |  | not yet: #9 (S3) |\n", ""), "missing row: .* / S3"),
    (lambda t: t.replace("| `S3` |  | not yet: #9 (S3) |", "| `S3` |  | same |"), "S3: says 'same' but headwater lacks it"),
    (lambda t: t.replace("| `FlowSpec` |  | same |", "| `FlowSpec` |  | not yet: #1 |"),
     "FlowSpec: says 'not yet' but headwater has it now"),
    (lambda t: t.replace("| `FlowSpec` |  | same |", "| `FlowSpec` |  | maybe |"), "FlowSpec: status 'maybe' must start"),
    (lambda t: t + "| `Gone` |  | same |\n", "row for something Metaflow does not have: .* / Gone"),
])
def test_problems_catches_each_kind_of_drift(edit: Any, complaint: str) -> None:
    good = render(MF, HW, "# title\n")
    assert problems(MF, HW, good) == []
    found = problems(MF, HW, edit(good))
    assert any(re.search(complaint, p) for p in found), found


def test_render_keeps_written_statuses_and_flips_what_headwater_gained() -> None:
    text = render(MF, HW, "# title\n").replace("| `S3` |  | not yet: #9 (S3) |", "| `S3` |  | not yet: #42 |")
    assert "| `S3` |  | not yet: #42 |" in render(MF, HW, text)
    gained = dict(HW, names=["FlowSpec", "S3"])
    assert parse(render(MF, gained, text))[("names", "S3")] == "same (issue 42)"
    assert parse(render(MF, gained, text.replace("not yet: #42", "not yet: no issue")))[("names", "S3")] == "same"
    assert [r.key for r in rows(MF)][:2] == ["FlowSpec", "S3"]
