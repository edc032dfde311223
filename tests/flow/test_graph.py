"""The static graph built from a flow's source: node kinds, structure, order and outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from headwater.exceptions import Location
from headwater.flow.graph import FlowGraph, Node, NodeKind, build_graph
from headwater.flow.show import Stream, show_lines
from headwater.flow.step import step

GRAPHS = Path(__file__).resolve().parent.parent / "flows" / "graphs"


@pytest.fixture(scope="module")
def flows(load_flow):
    """Every valid example flow, loaded once: {class name: class}."""
    out = {}
    for name in ("linear", "branches", "nested_foreach", "switch"):
        module = load_flow(name)
        out.update({k: v for k, v in vars(module).items() if isinstance(v, type) and v.__module__ == module.__name__})
    return out


@pytest.fixture(scope="module")
def graphs(flows):
    return {name: build_graph(cls) for name, cls in flows.items()}


@pytest.mark.parametrize("name", ["LinearFlow", "CustomEndsFlow", "SingleStepFlow", "BranchFlow",
                                  "NestedForeachFlow", "SwitchFlow"])
def test_example_flows_are_valid(graphs, name):
    assert graphs[name].lint() == []
    graphs[name].validate()


# --- kinds and structure ------------------------------------------------------------------


def test_linear_flow(graphs, line_of):
    g = graphs["LinearFlow"]
    assert g.name == "LinearFlow"
    assert (g.start, g.end) == ("start", "end")
    assert g.sorted_nodes == ["start", "middle", "end"]
    assert [n.kind for n in g] == [NodeKind.START, NodeKind.LINEAR, NodeKind.END]
    assert [n.type for n in g] == ["start", "linear", "end"]
    start = g["start"]
    assert start.out_funcs == ("middle",) and start.in_funcs == ()
    assert g["end"].in_funcs == ("middle",) and g["end"].out_funcs == ()
    assert start.is_start and not start.is_end and g["end"].is_end
    assert start.doc == "Begin here."
    # location: absolute file and the line of `def` (not of the decorator)
    assert start.location == Location(str(GRAPHS / "linear.py"), line_of("linear", "start"))
    assert start.next_location == Location(str(GRAPHS / "linear.py"), line_of("linear", "start-next"))
    assert g["end"].location.line == line_of("linear", "end")
    assert g["end"].next_location is None and not g["end"].has_tail_next
    assert start.has_tail_next and not start.invalid_tail_next
    assert g.doc == "A straight line of three steps."


def test_custom_start_and_end(graphs):
    g = graphs["CustomEndsFlow"]
    assert (g.start, g.end) == ("begin", "finish")
    assert g["begin"].kind is NodeKind.START and g["finish"].kind is NodeKind.END
    assert g.annotated_starts == ("begin",) and g.annotated_ends == ("finish",)


def test_single_step_is_start_and_end(graphs):
    g = graphs["SingleStepFlow"]
    node = g["only"]
    assert g.start == g.end == "only"
    assert node.kind is NodeKind.END and node.type == "end"
    assert node.is_start and node.is_end


def test_static_split_and_join(graphs):
    g = graphs["BranchFlow"]
    # one branch is listed to its end before the next one starts
    assert g.sorted_nodes == ["start", "fork", "a", "a2", "b", "join", "end"]
    fork, join = g["fork"], g["join"]
    assert fork.kind is NodeKind.SPLIT and fork.type == "split"
    assert fork.out_funcs == ("a", "b")
    assert fork.matching_join == "join"
    assert join.kind is NodeKind.JOIN and join.num_args == 2
    assert join.in_funcs == ("a2", "b")
    assert g["a"].split_parents == g["a2"].split_parents == g["b"].split_parents == ("fork",)
    assert join.split_parents == ("fork",)  # a join's stack ends with the split it closes
    assert g["end"].split_parents == ()
    assert not any(n.is_inside_foreach for n in g)


def test_nested_foreach(graphs):
    g = graphs["NestedForeachFlow"]
    assert g.sorted_nodes == ["start", "outer", "inner", "join_inner", "join_outer", "end"]
    start, outer, inner = g["start"], g["outer"], g["inner"]
    assert start.kind is NodeKind.FOREACH and start.type == "foreach" and start.foreach_param == "rows"
    assert outer.kind is NodeKind.FOREACH and outer.foreach_param == "cols"
    assert start.matching_join == "join_outer" and outer.matching_join == "join_inner"
    assert inner.split_parents == ("start", "outer")
    assert g["join_inner"].split_parents == ("start", "outer")
    assert g["join_outer"].split_parents == ("start",)
    inside = {n.name for n in g if n.is_inside_foreach}
    assert inside == {"outer", "inner", "join_inner"}


def test_switch(graphs):
    g = graphs["SwitchFlow"]
    start = g["start"]
    assert start.kind is NodeKind.SWITCH and start.type == "split-switch"
    assert start.condition == "mode"
    assert start.switch_cases == (("fast", "quick"), ("1", "slow"), ("False", "slow"), ("-2.5", "quick"))
    assert start.switch_case_values == ("fast", 1, False, -2.5)
    assert start.out_funcs == ("quick", "slow")  # in order, without repeats
    assert start.switch_target("fast") == "quick"
    assert start.switch_target(1) == "slow"
    assert start.switch_target("1") is None  # a value matches a key only if it equals it
    assert start.switch_target(False) == "slow"
    assert start.switch_target(-2.5) == "quick"
    assert start.switch_target("nope") is None
    # switches do not open a split: the branches re-converge without a join
    assert g["poll"].in_funcs == ("quick", "slow", "poll")
    assert g["poll"].split_parents == ()


def test_switch_self_loop(graphs, line_of):
    g = graphs["SwitchFlow"]
    poll = g["poll"]
    assert poll.switch_cases == (("again", "poll"), ("done", "end"))
    assert poll.out_funcs == ("poll", "end")
    assert poll.next_location.line == line_of("switch", "poll-next")
    # the self-loop is ignored for ordering
    assert g.sorted_nodes == ["start", "quick", "slow", "poll", "end"]


def test_decorators_and_num_args_come_from_the_function(flowspec):
    class Marker:
        name = "marker"

    class Decorated(flowspec):
        @step
        def start(self):
            self.next(self.end)

        @step
        def end(self):
            pass

    Decorated.start.decorators.append(Marker())
    g = build_graph(Decorated)
    assert [type(d).__name__ for d in g["start"].decorators] == ["Marker"]
    assert g["start"].num_args == 1
    assert g.to_info()["steps"]["start"]["decorators"] == ["marker"]


def test_inline_flow_in_a_function(flowspec):
    class Inline(flowspec):
        """Defined inside a test."""

        @step
        def start(self):
            self.items = [1, 2]
            self.next(self.body, foreach="items")

        @step
        def body(self):
            self.next(self.join)

        @step
        def join(self, inputs):
            self.next(self.end)

        @step
        def end(self):
            pass

    g = build_graph(Inline)
    assert g.lint() == []
    assert g["start"].location.file == __file__
    assert g["body"].is_inside_foreach and not g["join"].is_inside_foreach


def test_num_parallel_is_a_parallel_split(flowspec):
    class Gang(flowspec):
        @step
        def start(self):
            self.next(self.end, num_parallel=2)

        @step
        def end(self):
            pass

    node = build_graph(Gang)["start"]
    assert node.has_tail_next and not node.invalid_tail_next
    assert node.out_funcs == ("end",) and node.num_parallel == 2
    assert node.kind.value == "split-parallel" and node.type == "foreach"


# --- container protocol and outputs -------------------------------------------------------


def test_mapping_protocol(graphs):
    g = graphs["BranchFlow"]
    assert isinstance(g, FlowGraph)
    assert "fork" in g and "nope" not in g
    assert isinstance(g["fork"], Node)
    assert [n.name for n in g] == g.sorted_nodes
    assert len(g) == len(g.nodes) == 7
    with pytest.raises(KeyError):
        g["nope"]


def test_nodes_are_immutable(graphs):
    with pytest.raises(AttributeError):
        graphs["LinearFlow"]["start"].kind = NodeKind.END  # type: ignore[misc]


@pytest.mark.parametrize("name", ["LinearFlow", "BranchFlow", "NestedForeachFlow", "SwitchFlow"])
def test_to_info_is_json(graphs, name):
    g = graphs[name]
    info = json.loads(json.dumps(g.to_info()))
    assert info["name"] == name
    assert (info["start"], info["end"]) == (g.start, g.end)
    assert info["order"] == g.sorted_nodes
    assert set(info["steps"]) == set(g.nodes)
    for node in g:
        step_info = info["steps"][node.name]
        assert step_info["type"] == node.kind.value
        assert step_info["next"] == list(node.out_funcs)
        assert step_info["line"] == node.location.line


def test_to_info_content(graphs):
    steps = graphs["SwitchFlow"].to_info()["steps"]
    assert steps["start"]["type"] == "split-switch"
    assert steps["start"]["condition"] == "mode"
    assert steps["start"]["switch_cases"] == {"fast": "quick", "1": "slow", "False": "slow", "-2.5": "quick"}
    assert steps["start"]["switch_case_values"] == ["fast", 1, False, -2.5]
    foreach = graphs["NestedForeachFlow"].to_info()["steps"]["start"]
    assert foreach["type"] == "split-foreach" and foreach["foreach_param"] == "rows"
    assert graphs["LinearFlow"].to_info()["steps"]["start"]["doc"] == "Begin here."


def test_output_dot(graphs):
    """Metaflow's text: steps by name as records, then edges; a switch is a hexagon with labelled edges."""
    dot = graphs["SwitchFlow"].output_dot()
    assert dot.startswith("digraph SwitchFlow {\n") and dot.endswith("\n}")
    assert 'poll -> poll [label="again" color="blue" fontcolor="blue"];' in dot
    assert 'start -> slow [label="1" color="blue" fontcolor="blue"];' in dot
    assert '<font point-size="9">switch: mode</font>>' in dot
    foreach_dot = graphs["NestedForeachFlow"].output_dot()
    assert ('"start"[ label = <<b>start</b> | <font point-size="10">foreach</font>>   fontname = "Helvetica"'
            '   shape = "record" ];') in foreach_dot
    assert "start -> outer;" in foreach_dot and "join_outer -> end;" in foreach_dot
    names = [line.split('"')[1] for line in foreach_dot.splitlines() if line.startswith('"')]
    assert names == sorted(names)


def test_show_lines(flows, graphs):
    lines = list(show_lines(graphs["LinearFlow"], flows["LinearFlow"]))
    O, E = Stream.OUT, Stream.ERR
    assert lines == [
        (E, ""), (E, "A straight line of three steps."),
        (E, ""), (O, "Step start"), (O, "    Begin here."), (O, "    => middle"),
        (E, ""), (O, "Step middle"), (O, "    ?"), (O, "    => end"),
        (E, ""), (O, "Step end"), (O, "    Finish."),
        (E, ""),
    ]


def test_show_lines_name_targets_as_metaflow_does(flows, graphs):
    def out(name: str) -> list[str]:
        return [line for stream, line in show_lines(graphs[name], flows[name]) if stream is Stream.OUT]

    foreach = out("NestedForeachFlow")
    assert foreach[:3] == ["Step start", "    ?", "    => outer"]
    switch = out("SwitchFlow")
    assert "    => quick, slow" in switch and "    => poll, end" in switch  # case targets, no repeats
    assert out("BranchFlow")[-2:] == ["Step end", "    ?"]  # no transition after the end step


# --- robustness and parsing ---------------------------------------------------------------


def test_build_never_raises_on_broken_flows(load_flow):
    module = load_flow("lint_cases")
    classes = [v for v in vars(module).values() if isinstance(v, type) and v.__module__ == module.__name__]
    assert len(classes) > 30
    for cls in classes:
        assert build_graph(cls).lint(), cls.__name__


def test_flow_without_source(flowspec):
    namespace = {"FlowSpec": flowspec, "step": step}
    source = "class NoSource(FlowSpec):\n    @step\n    def start(self):\n        self.next(self.end)\n" \
             "    @step\n    def end(self):\n        pass\n"
    exec(compile(source, "<generated>", "exec"), namespace)
    g = build_graph(namespace["NoSource"])
    assert g.sourceless == {"start", "end"}
    assert g["start"].location == Location("<generated>", 2)


def test_parsed_source_is_cached(flows):
    from headwater.flow import parse as parse_module

    build_graph(flows["BranchFlow"])
    cached = parse_module._PARSED[str(GRAPHS / "branches.py")]
    build_graph(flows["BranchFlow"])
    assert parse_module._PARSED[str(GRAPHS / "branches.py")] is cached
