"""The parent/child queries Metaflow's client makes, on small graphs (pure functions of client.lineage)."""

from __future__ import annotations

import pytest

from headwater.client.lineage import ANY, child_query, matches, parent_query, previous_steps


def _graph(**steps: tuple[str, list[str]]) -> dict:
    return {"steps": {name: {"type": kind, "next": nxt} for name, (kind, nxt) in steps.items()}}


# start -foreach-> outer -foreach-> inner -> join_inner -> join_outer -> end
NESTED = _graph(start=("split-foreach", ["outer"]), outer=("split-foreach", ["inner"]),
                inner=("linear", ["join_inner"]), join_inner=("join", ["join_outer"]),
                join_outer=("join", ["end"]), end=("end", []))
# start -> loop (switch: loop | route) -> route (switch: high | low) -> high/low -> end (static join)
SWITCH = _graph(start=("linear", ["loop"]), loop=("split-switch", ["loop", "route"]),
                route=("split-switch", ["high", "low"]), high=("linear", ["end"]), low=("linear", ["end"]),
                end=("end", []))


@pytest.mark.parametrize("graph,step,path,want", [
    (NESTED, "start", None, ([], ANY)),
    (NESTED, "outer", "outer:1", (["start"], ANY)),  # first foreach level: every task of the split
    (NESTED, "inner", "outer:1,inner:2", (["outer"], "outer:1")),
    (NESTED, "join_inner", "outer:1", (["inner"], "outer:1,.*")),
    (NESTED, "join_outer", None, (["join_inner"], ANY)),
    (SWITCH, "loop", None, (["start", "loop"], ANY)),  # a self-loop step is among its own parents
    (SWITCH, "end", None, (["high", "low"], ANY)),
])
def test_parent_query(graph, step, path, want):
    assert parent_query(graph, step, path) == want


@pytest.mark.parametrize("graph,step,path,want", [
    (NESTED, "start", None, (["outer"], ANY)),
    (NESTED, "outer", "outer:1", (["inner"], "outer:1,.*")),
    (NESTED, "inner", "outer:1,inner:2", (["join_inner"], "outer:1")),
    (NESTED, "join_inner", "outer:1", (["join_outer"], ANY)),
    (SWITCH, "loop", None, (["loop", "route"], ANY)),
    (SWITCH, "route", None, (["high", "low"], ANY)),
    (SWITCH, "end", None, ([], ANY)),
])
def test_child_query(graph, step, path, want):
    assert child_query(graph, step, path) == want


def test_previous_steps_and_matching():
    assert previous_steps(SWITCH, "loop") == ["start", "loop"]
    assert matches(ANY, None) and matches("outer:1,.*", "outer:1,inner:0")
    assert not matches("outer:1,.*", "outer:10,inner:0") and not matches("outer:1", None)
