"""One test per lint rule: the error's message, its line and its hint.

The broken flows live in tests/flows/graphs/lint_cases.py; ``# L:<marker>``
marks the line each error must point at.
"""

from __future__ import annotations

import re

import pytest

from headwater.exceptions import GraphError, LintErrors
from headwater.flow.graph import build_graph
from headwater.flow.step import step

CASES = "lint_cases"


@pytest.fixture(scope="module")
def cases(load_flow):
    return load_flow(CASES)


def expect(cls: type, match: str, line: int) -> GraphError:
    """``validate()`` fails with an error matching ``match`` at ``line``, and every error has a hint."""
    graph = build_graph(cls)
    with pytest.raises(LintErrors, match=match) as info:
        graph.validate()
    errors = info.value.errors
    assert all(e.hint and e.location is not None for e in errors), [e.render() for e in errors]
    hits = [e for e in errors if re.search(match, e.message)]
    assert hits, [e.message for e in errors]
    assert hits[0].location.line == line, hits[0].render()
    assert hits[0].location.file.endswith(f"{CASES}.py")
    return hits[0]


# (flow class, message pattern, line marker, hint pattern)
RULES = [
    ("ReservedCmd", r"Step 'cmd' has a reserved name", "reserved-cmd", r"Rename the step"),
    ("ReservedFlowSpecMember", r"Step 'foreach_stack' has a reserved name: FlowSpec already uses",
     "reserved-member", r"Rename"),
    ("BadNameUpper", r"Step name 'Train' is not allowed: step names use only lowercase", "bad-upper",
     r"e\.g\. to 'train'"),
    ("BadNameUnderscore", r"Step name '_train' is not allowed.*do not start with an underscore",
     "bad-underscore", r"'train'"),
    ("NoStart", r"Flow 'NoStart' has no start step", "no-start", r"@step\(start=True\)"),
    ("NoEnd", r"Flow 'NoEnd' has no end step", "no-end", r"@step\(end=True\)"),
    ("TwoStarts", r"Steps 'first' and 'second' are both marked @step\(start=True\)", "two-starts",
     r"one step only"),
    ("StartConflict", r"Step 'begin' is marked @step\(start=True\), but the flow also has a step named 'start'",
     "start-conflict", r"Either name a step 'start' or use @step\(start=True\)"),
    ("EndConflict", r"Step 'finish' is marked @step\(end=True\), but the flow also has a step named 'end'",
     "end-conflict", r"Either name a step 'end'"),
    ("StartHasIncoming", r"Step 'a' goes to the start step 'start'", "start-incoming", r"runs once, first"),
    ("EndHasNext", r"The end step 'end' calls self\.next\(\)", "end-next", r"Remove the self\.next\(\)"),
    ("MissingNext", r"Step 'a' does not end with self\.next\(\)", "missing-next", r"self\.next\(self\.end\)"),
    ("NextNotLast", r"Step 'start' calls self\.next\(\) at line \d+, but not as its last statement",
     "next-not-last", r"outside any if/for/with/try"),
    ("NextTwice", r"Step 'start' calls self\.next\(\) at line \d+ as well as at its end", "next-twice",
     r"exactly once"),
    ("NumParallel", r"Step 'start' starts 'train' with self\.next\(num_parallel=\.\.\.\), but step 'train' "
     r"has no @parallel decorator", "num-parallel", r"Put @parallel above @step on 'train'"),
    ("ForeachNotLiteral", r"`self\.next\(self\.a, foreach=name\)`: foreach= must be a string literal",
     "foreach-not-literal", r"foreach='items'"),
    ("TargetNotSelfAttr", r"`self\.next\(end\)`: end is not a step", "not-self-attr", r"Use one of"),
    ("SwitchKeyNotLiteral", r"switch key self\.key must be a string or number literal", "switch-key",
     r"condition='attr'"),
    ("UnknownTarget", r"Step 'start' calls self\.next\(self\.trian\), but the flow has no step 'trian'",
     "unknown", r"Did you mean 'train'\?"),
    ("NotAStep", r"Step 'start' goes to self\.helper, but 'helper' is not a step", "not-a-step",
     r"Decorate 'helper' with @step"),
    ("Orphan", r"Step 'lonely' is never reached", "orphan", r"Add self\.lonely"),
    ("TooManyArgs", r"Step 'a' takes 3 arguments", "too-many-args", r"Remove the extra parameters"),
    ("JoinAndSplit", r"Step 'join' takes inputs \(a join\) and also splits", "join-and-split",
     r"Join in one step, then split"),
    ("EndTakesInputs", r"The end step 'end' takes inputs, but the end step cannot be a join", "end-inputs",
     r"Add a join step before it"),
    ("InputsWithoutSplit", r"Step 'gather' takes inputs \(a join\), but no split comes before it",
     "inputs-no-split", r"Remove the inputs parameter"),
    ("JoinMissesBranch", r"Join step 'join' does not receive branch 'c' of split 'start'.*it gets 'a', 'b'",
     "join-missing", r"End each branch of 'start' with self\.next\(self\.join\)"),
    ("JoinExtraInput", r"Join step 'join' closes split 'outer_a' but is also reached from 'outer_b'",
     "join-extra", r"Join the branches of 'outer_a' first"),
    ("JoinMissesBranch", r"The end step 'end' is reached from inside split 'start' \(through 'c'\) "
     r"without passing its join 'join'", "end-open-split", r"Send that branch to 'join'"),
    ("MergeWithoutJoin", r"Step 'merge' is reached from different branches \('a', 'b'\) but is not a join",
     "merge-no-join", r"def merge\(self, inputs\)"),
    ("EmptyForeach", r"Foreach step 'start' goes straight to join step 'join'", "empty-foreach",
     r"per-item work"),
    ("ForeachWithoutJoin", r"Foreach step 'start' has no matching join", "foreach-no-join", r"Add a join step"),
    ("SwitchOneCase", r"Switch step 'start' has 1 case\(s\); a switch needs at least two", "switch-one-case",
     r"single target"),
    ("SwitchNoCondition", r"Switch step 'start' has no condition=", "switch-no-condition",
     r"condition='attr'"),
    ("SwitchIntoJoin", r"Switch step 'a' sends case 'skip' straight to join step 'join'", "switch-into-join",
     r"Add a step between"),
    ("Cycle", r"Steps a -> b -> a form a cycle", "cycle-back", r"Only a switch case may point back"),
    ("LinearSelfLoop", r"Step 'a' goes to itself \(a -> a\)", "self-loop", r"Break the cycle"),
]


@pytest.mark.parametrize(
    ("flow", "match", "marker", "hint"), RULES, ids=[f"{r[0]}-{r[2]}" for r in RULES]
)
def test_rule(cases, line_of, flow, match, marker, hint):
    error = expect(getattr(cases, flow), match, line_of(CASES, marker))
    assert re.search(hint, error.hint), error.hint


def test_every_case_flow_is_covered(cases):
    names = {v.__name__ for v in vars(cases).values() if isinstance(v, type) and v.__module__ == cases.__name__}
    assert names - {r[0] for r in RULES} == {"Several"}


def test_errors_are_sorted_by_line_and_collected(cases, line_of):
    graph = build_graph(cases.Several)
    errors = graph.lint()
    assert [e.location.line for e in errors] == [line_of(CASES, "several-1"), line_of(CASES, "several-2")]
    with pytest.raises(LintErrors, match=r"Step 'a' does not end with self\.next\(\)") as info:
        graph.validate()
    rendered = info.value.render()
    assert rendered.startswith("The flow's graph has 2 problems:")
    assert f"{CASES}.py:{line_of(CASES, 'several-2')}" in rendered


def test_lint_messages_point_at_the_fix(cases):
    error = build_graph(cases.UnknownTarget).lint()[0]
    assert error.render().startswith("Invalid flow graph (")
    assert "Hint: Define a step 'trian', or fix the name in self.next(). Did you mean 'train'?" in str(error)


def test_step_without_self(flowspec):
    class NoSelf(flowspec):
        @step
        def start(self):
            self.next(self.end)

        @step
        def end():  # noqa: N805
            pass

    with pytest.raises(LintErrors, match=r"Step 'end' takes no arguments"):
        build_graph(NoSelf).validate()


def test_start_with_inputs(flowspec):
    class StartInputs(flowspec):
        @step
        def start(self, inputs):
            self.next(self.end)

        @step
        def end(self):
            pass

    with pytest.raises(LintErrors, match=r"The start step 'start' takes inputs, but nothing comes before it"):
        build_graph(StartInputs).validate()


def test_switch_duplicate_keys(flowspec):
    class DupKeys(flowspec):
        @step
        def start(self):
            self.next({1: self.a, "1": self.end}, condition="k")

        @step
        def a(self):
            self.next(self.end)

        @step
        def end(self):
            pass

    with pytest.raises(LintErrors, match=r"switch keys 1 and '1' cannot be told apart"):
        build_graph(DupKeys).validate()


def test_sourceless_step_is_reported(flowspec):
    namespace = {"FlowSpec": flowspec, "step": step}
    exec(compile("class Gen(FlowSpec):\n    @step\n    def start(self):\n        pass\n", "<gen>", "exec"), namespace)
    with pytest.raises(LintErrors, match=r"cannot read the source code of step 'start'"):
        build_graph(namespace["Gen"]).validate()


def test_switch_self_loop_is_not_a_cycle(flowspec):
    class Loop(flowspec):
        @step
        def start(self):
            self.next(self.poll)

        @step
        def poll(self):
            self.next({"again": self.poll, "done": self.end}, condition="status")

        @step
        def end(self):
            pass

    assert build_graph(Loop).lint() == []
