"""Lint rules for a flow's graph (authoring layer, internal).

Each rule is a small function registered with ``@_rule`` that yields a
``GraphError`` per problem; ``lint_graph`` runs them all and returns every
problem, sorted by line, so a user sees them together.
"""

from __future__ import annotations

import difflib
import re
from typing import Callable, Iterable, Iterator

from ..exceptions import GraphError, Location
from .graph import FANOUT, FlowGraph, Frames, Node, NodeKind

Rule = Callable[[FlowGraph], Iterable[GraphError]]
_RULES: list[Rule] = []

_STEP_NAME = re.compile(r"[a-z0-9_]+")

_FORMS = (
    "self.next(self.a) · self.next(self.a, self.b) · self.next(self.a, foreach='items') · "
    "self.next({'x': self.a, 'y': self.b}, condition='attr') · self.next(self.a, num_parallel=4)"
)


def _rule(fn: Rule) -> Rule:
    _RULES.append(fn)
    return fn


def lint_graph(graph: FlowGraph) -> list[GraphError]:
    """Run every rule on ``graph``; return all problems, sorted by line."""
    errors: list[GraphError] = []
    for rule in _RULES:
        errors.extend(rule(graph))
    return sorted(errors, key=lambda e: e.location.line if e.location else 0)


def _names(names: Iterable[str]) -> str:
    return ", ".join(repr(n) for n in names)


def _plural(n: int, word: str) -> str:
    return word if n == 1 else word + "es" if word.endswith("ch") else word + "s"


def _at(node: Node, line: int | None = None) -> Location:
    if line is not None:
        return Location(node.location.file, line)
    return node.next_location or node.location


def _reachable(graph: FlowGraph) -> set[str]:
    """Steps reachable from the start step (all steps when there is no start step)."""
    if graph.start is None:
        return set(graph.nodes)
    seen = {graph.start}
    todo = [graph.start]
    while todo:
        for t in graph[todo.pop()].out_funcs:
            if t in graph and t not in seen:
                seen.add(t)
                todo.append(t)
    return seen


# --- names --------------------------------------------------------------------------------


@_rule
def reserved_names(graph: FlowGraph) -> Iterator[GraphError]:
    for node in graph:
        if node.name in graph.reserved:
            yield GraphError(
                f"Step {node.name!r} has a reserved name: FlowSpec already uses self.{node.name}.",
                location=node.location,
                hint=f"Rename the step (e.g. to {node.name + '_step'!r}) and the self.next() calls that name it.",
            )


@_rule
def step_names(graph: FlowGraph) -> Iterator[GraphError]:
    for node in graph:
        if not _STEP_NAME.fullmatch(node.name) or node.name.startswith("_"):
            better = re.sub(r"[^a-z0-9_]", "_", node.name.lower()).lstrip("_") or "step"
            yield GraphError(
                f"Step name {node.name!r} is not allowed: step names use only lowercase letters, "
                "digits and underscores, and do not start with an underscore.",
                location=node.location,
                hint=f"Rename it, e.g. to {better!r}.",
            )


# --- start and end ------------------------------------------------------------------------


@_rule
def start_and_end_exist(graph: FlowGraph) -> Iterator[GraphError]:
    for role, found in (("start", graph.start), ("end", graph.end)):
        if found is None:
            yield GraphError(
                f"Flow {graph.name!r} has no {role} step.",
                location=graph.location,
                hint=f"Name a step {role!r}, or mark it with @step({role}=True).",
            )
    for role, marked in (("start", graph.annotated_starts), ("end", graph.annotated_ends)):
        for extra in marked[1:]:
            yield GraphError(
                f"Steps {marked[0]!r} and {extra!r} are both marked @step({role}=True); a flow has one {role} step.",
                location=graph[extra].location,
                hint=f"Keep {role}=True on one step only.",
            )


@_rule
def annotation_conflicts(graph: FlowGraph) -> Iterator[GraphError]:
    for role, marked in (("start", graph.annotated_starts), ("end", graph.annotated_ends)):
        if marked and marked[0] != role and role in graph and role not in marked:
            yield GraphError(
                f"Step {marked[0]!r} is marked @step({role}=True), but the flow also has a step named {role!r}; "
                f"headwater cannot tell which one is the {role}.",
                location=graph[marked[0]].location,
                hint=f"Either name a step {role!r} or use @step({role}=True), not both: "
                f"rename the step {role!r} or drop {role}=True.",
            )


@_rule
def nothing_enters_start(graph: FlowGraph) -> Iterator[GraphError]:
    if graph.start is None:
        return
    start = graph[graph.start]
    for pred in start.in_funcs:
        if pred == start.name and start.kind is NodeKind.SWITCH:
            continue  # a switch looping on its own step
        yield GraphError(
            f"Step {pred!r} goes to the start step {start.name!r}; no step may transition to the start step.",
            location=_at(graph[pred]),
            hint="The start step runs once, first. Move the work you want to repeat to a new step and go there.",
        )


@_rule
def end_has_no_next(graph: FlowGraph) -> Iterator[GraphError]:
    if graph.end is None:
        return
    end = graph[graph.end]
    if end.has_tail_next or end.stray_next_lines:
        line = end.next_location.line if end.next_location else end.stray_next_lines[0]
        yield GraphError(
            f"The end step {end.name!r} calls self.next(); the end step is the last one and has no transition.",
            location=_at(end, line),
            hint="Remove the self.next() call from the end step, or add a new end step after it.",
        )


# --- the step functions -------------------------------------------------------------------


@_rule
def argument_count(graph: FlowGraph) -> Iterator[GraphError]:
    for node in graph:
        if node.num_args == 0:
            yield GraphError(
                f"Step {node.name!r} takes no arguments; a step is a method and takes self.",
                location=node.location,
                hint=f"Write def {node.name}(self):",
            )
        elif node.num_args > 2:
            yield GraphError(
                f"Step {node.name!r} takes {node.num_args} arguments; a step takes only self "
                "(or self and inputs, for a join).",
                location=node.location,
                hint="Remove the extra parameters; pass data between steps as self.<artifact>.",
            )
        elif node.num_args == 2 and node.kind is not NodeKind.JOIN:
            if node.is_end:
                msg = f"The end step {node.name!r} takes inputs, but the end step cannot be a join."
                hint = f"Add a join step before it: def join(self, inputs): ... self.next(self.{node.name})"
            elif node.is_start:
                msg = f"The start step {node.name!r} takes inputs, but nothing comes before it."
                hint = f"Write def {node.name}(self):"
            elif node.kind in (NodeKind.SPLIT, NodeKind.FOREACH, NodeKind.PARALLEL, NodeKind.SWITCH):
                msg = f"Step {node.name!r} takes inputs (a join) and also splits; one step cannot do both."
                hint = "Join in one step, then split in the next."
            else:
                continue  # no valid self.next: reported by its own rule
            yield GraphError(msg, location=node.location, hint=hint)


@_rule
def source_available(graph: FlowGraph) -> Iterator[GraphError]:
    for name in sorted(graph.sourceless):
        yield GraphError(
            f"headwater cannot read the source code of step {name!r}, so it cannot find its self.next().",
            location=graph[name].location,
            hint="Define flows in a .py file or a notebook cell whose source Python can read, not with exec().",
        )


# --- transitions --------------------------------------------------------------------------


@_rule
def ends_with_next(graph: FlowGraph) -> Iterator[GraphError]:
    for node in graph:
        if node.is_end or node.name in graph.sourceless:
            continue
        if not node.has_tail_next and node.stray_next_lines:
            line = node.stray_next_lines[0]
            yield GraphError(
                f"Step {node.name!r} calls self.next() at line {line}, but not as its last statement.",
                location=_at(node, line),
                hint="self.next() must be the step's last statement, outside any if/for/with/try block; "
                "to choose a step at run time use a switch: self.next({'a': self.a, 'b': self.b}, condition='attr').",
            )
        elif not node.has_tail_next:
            yield GraphError(
                f"Step {node.name!r} does not end with self.next(), so headwater cannot tell which step comes next.",
                location=node.location,
                hint="End the step with a transition, e.g. self.next(self.end).",
            )
        elif node.stray_next_lines:
            line = node.stray_next_lines[0]
            yield GraphError(
                f"Step {node.name!r} calls self.next() at line {line} as well as at its end.",
                location=_at(node, line),
                hint="Call self.next() exactly once, as the step's last statement.",
            )


@_rule
def valid_transitions(graph: FlowGraph) -> Iterator[GraphError]:
    for node in graph:
        if node.invalid_tail_next and not node.is_end:
            yield GraphError(
                f"Step {node.name!r} ends with an invalid transition, {node.tail_error}",
                location=_at(node),
                hint=f"Use one of: {_FORMS}.",
            )


@_rule
def known_targets(graph: FlowGraph) -> Iterator[GraphError]:
    for node in graph:
        if node.is_end:
            continue
        for target in node.out_funcs:
            if target in graph:
                continue
            if target in graph.undecorated:
                yield GraphError(
                    f"Step {node.name!r} goes to self.{target}, but {target!r} is not a step "
                    "(it has no @step decorator).",
                    location=_at(node),
                    hint=f"Decorate {target!r} with @step, or fix the name in self.next().",
                )
                continue
            hint = f"Define a step {target!r}, or fix the name in self.next()."
            close = difflib.get_close_matches(target, list(graph.nodes), n=1)
            if close:
                hint += f" Did you mean {close[0]!r}?"
            yield GraphError(
                f"Step {node.name!r} calls self.next(self.{target}), but the flow has no step {target!r}.",
                location=_at(node),
                hint=hint,
            )


def _broken(node: Node, graph: FlowGraph) -> bool:
    """True when a step's transition could not be read, so what comes after it is unknown."""
    if node.is_end:
        return False
    return (
        node.name in graph.sourceless
        or not node.has_tail_next
        or node.invalid_tail_next
        or any(t not in graph for t in node.out_funcs)
    )


@_rule
def no_orphans(graph: FlowGraph) -> Iterator[GraphError]:
    if graph.start is None:
        return
    reached = _reachable(graph)
    if any(_broken(graph[n], graph) for n in reached):
        return  # steps after a broken transition look unreachable; fix that first
    for node in graph:
        if node.name not in reached:
            yield GraphError(
                f"Step {node.name!r} is never reached: no path from the start step {graph.start!r} leads to it.",
                location=node.location,
                hint=f"Add self.{node.name} to the self.next() of the step before it, or delete the step.",
            )


def _edges(graph: FlowGraph, node: Node) -> list[str]:
    """Edges that count for cycles: a switch case back to its own step is a loop, not a cycle."""
    return [
        t for t in node.out_funcs
        if t in graph and not (t == node.name and node.kind is NodeKind.SWITCH)
    ]


def _components(graph: FlowGraph) -> list[list[str]]:
    """Strongly connected components (Tarjan), iteratively."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    for root in graph.sorted_nodes:
        if root in index:
            continue
        work = [(root, iter(_edges(graph, graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            name, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(_edges(graph, graph[child]))))
                    break
                if child in on_stack:
                    low[name] = min(low[name], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[name])
                if low[name] == index[name]:
                    members = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        members.append(member)
                        if member == name:
                            break
                    found.append(members)
    return found


def _cycle_path(graph: FlowGraph, first: str, members: set[str]) -> list[str]:
    """A shortest path first -> ... -> first inside one component."""
    parent: dict[str, str] = {}
    queue = [first]
    while queue:
        name = queue.pop(0)
        for child in _edges(graph, graph[name]):
            if child == first:
                path = [name]
                while path[-1] != first:
                    path.append(parent[path[-1]])
                return path[::-1] + [first]
            if child in members and child not in parent:
                parent[child] = name
                queue.append(child)
    return [first, first]  # pragma: no cover - a component always has a cycle


@_rule
def acyclic(graph: FlowGraph) -> Iterator[GraphError]:
    for members in _components(graph):
        first = min(members, key=lambda n: graph[n].location.line)
        if len(members) == 1 and first not in _edges(graph, graph[first]):
            continue
        path = _cycle_path(graph, first, set(members))
        loop = " -> ".join(path)
        yield GraphError(
            f"Steps {loop} form a cycle; a flow's graph cannot loop back."
            if len(members) > 1 else f"Step {first!r} goes to itself ({loop}); a flow's graph cannot loop back.",
            location=_at(graph[path[-2]]),
            hint="Only a switch case may point back to its own step (a loop: "
            "self.next({'again': self.x, 'done': self.y}, condition='attr') in step x). Break the cycle.",
        )


# --- splits and joins ---------------------------------------------------------------------


def _close(arrivals: tuple[tuple[str, Frames], ...]) -> tuple[str, Frames] | None:
    """The split a join closes (the innermost one open on its deepest input) and the splits outside it."""
    deepest = max((f for _, f in arrivals), key=len, default=())
    if not deepest:
        return None
    return deepest[-1][0], deepest[:-1]


def _extra_input(pred: str, frames: Frames, outer: Frames, split: str, join: str) -> tuple[str, str]:
    """Why an input of ``join`` is not a branch of ``split``, and how to fix it."""
    level = next((i for i, (a, b) in enumerate(zip(frames, outer)) if a != b), min(len(frames), len(outer)))
    if level < len(outer) and level < len(frames) and frames[level][0] == outer[level][0]:
        other, mine = frames[level], outer[level]
        return (
            f"which is in branch {other[1]!r} of split {other[0]!r} while {join!r} is in branch {mine[1]!r}",
            f"Join the branches of {split!r} first, then gather the branches of {other[0]!r} in one join.",
        )
    if level < len(outer):
        return (f"which is outside split {outer[level][0]!r}",
                f"Remove self.{join} from the self.next() of {pred!r}.")
    inner = frames[level][0] if level < len(frames) and frames[level][0] != split else (
        frames[level + 1][0] if level + 1 < len(frames) else None)
    if inner is None:
        return (f"which is outside split {split!r}", f"Remove self.{join} from the self.next() of {pred!r}.")
    return (f"which is inside split {inner!r}, not joined yet",
            f"Join the branches of {inner!r} first, then go to {join!r}.")


@_rule
def joins_close_a_split(graph: FlowGraph) -> Iterator[GraphError]:
    reached = _reachable(graph)
    for node in graph:
        if node.kind is not NodeKind.JOIN or node.name not in reached:
            continue
        arrivals = graph.arrivals.get(node.name, ())
        if not arrivals:
            continue  # never reached: reported as an orphan
        closed = _close(arrivals)
        if closed is None:
            preds = [p for p, _ in arrivals]
            yield GraphError(
                f"Step {node.name!r} takes inputs (a join), but no split comes before it: "
                f"{_names(preds)} {'is' if len(preds) == 1 else 'are'} not inside a split or foreach.",
                location=node.location,
                hint=f"Remove the inputs parameter (def {node.name}(self):), "
                "or split before it with self.next(self.a, self.b) or foreach=.",
            )
            continue
        split, outer = closed
        covered = []
        for pred, frames in arrivals:
            if frames and frames[:-1] == outer and frames[-1][0] == split:
                covered.append(frames[-1][1])
                continue
            where, hint = _extra_input(pred, frames, outer, split, node.name)
            yield GraphError(
                f"Join step {node.name!r} closes split {split!r} but is also reached from {pred!r}, "
                f"{where}; it is not a branch of {split!r}.",
                location=_at(graph[pred]),
                hint=hint,
            )
        missing = [b for b in graph[split].out_funcs if b in graph and b not in covered]
        if missing:
            yield GraphError(
                f"Join step {node.name!r} does not receive {_plural(len(missing), 'branch')} {_names(missing)} "
                f"of split {split!r}; a join must gather every branch of the split it closes "
                f"(it gets {_names(dict.fromkeys(covered))}).",
                location=node.location,
                hint=f"End each branch of {split!r} with self.next(self.{node.name}).",
            )


@_rule
def branches_meet_in_joins(graph: FlowGraph) -> Iterator[GraphError]:
    reached = _reachable(graph)
    for node in graph:
        if node.num_args == 2 or node.is_end or node.name not in reached:
            continue
        arrivals = graph.arrivals.get(node.name, ())
        by_pred: dict[str, set[Frames]] = {}
        for pred, frames in arrivals:
            by_pred.setdefault(pred, set()).add(frames)
        if len({frozenset(f) for f in by_pred.values()}) > 1:
            yield GraphError(
                f"Step {node.name!r} is reached from different branches ({_names(by_pred)}) "
                "but is not a join step.",
                location=node.location,
                hint=f"Make it a join that takes the branches' inputs: def {node.name}(self, inputs):",
            )


@_rule
def end_outside_splits(graph: FlowGraph) -> Iterator[GraphError]:
    if graph.end is None:
        return
    reported: set[str] = set()
    for pred, frames in graph.arrivals.get(graph.end, ()):
        for split, _ in frames:
            join = graph[split].matching_join
            if join is None or split in reported:
                continue  # a split without any join is reported at the split
            reported.add(split)
            yield GraphError(
                f"The end step {graph.end!r} is reached from inside split {split!r} (through {pred!r}) "
                f"without passing its join {join!r}.",
                location=_at(graph[pred]),
                hint=f"Send that branch to {join!r}, so every branch of {split!r} is joined before the end.",
            )


@_rule
def splits_have_joins(graph: FlowGraph) -> Iterator[GraphError]:
    reached = _reachable(graph)
    for node in graph:
        if node.kind not in (NodeKind.SPLIT, *FANOUT) or node.matching_join is not None:
            continue
        if node.name not in reached or any(t not in graph for t in node.out_funcs):
            continue
        what = {NodeKind.FOREACH: "Foreach", NodeKind.PARALLEL: "Parallel split"}.get(node.kind, "Split")
        yield GraphError(
            f"{what} step {node.name!r} has no matching join: its branches never meet again.",
            location=_at(node),
            hint=f"Add a join step (def join(self, inputs): ... self.next(self.end)) and end every branch "
            f"of {node.name!r} with self.next(self.join).",
        )


@_rule
def foreach_not_empty(graph: FlowGraph) -> Iterator[GraphError]:
    for node in graph:
        if node.kind is not NodeKind.FOREACH:
            continue
        for target in node.out_funcs:
            if target in graph and graph[target].kind is NodeKind.JOIN:
                yield GraphError(
                    f"Foreach step {node.name!r} goes straight to join step {target!r}, so nothing runs per item.",
                    location=_at(node),
                    hint=f"Add a step for the per-item work: self.next(self.body, foreach={node.foreach_param!r}), "
                    f"and have body go to {target!r}.",
                )


@_rule
def switches_are_complete(graph: FlowGraph) -> Iterator[GraphError]:
    for node in graph:
        if node.kind is not NodeKind.SWITCH:
            continue
        if len(node.switch_cases) < 2:
            yield GraphError(
                f"Switch step {node.name!r} has {len(node.switch_cases)} case(s); a switch needs at least two.",
                location=_at(node),
                hint="Add cases, or use self.next(self.<step>) for a single target.",
            )
        if node.condition is None:
            yield GraphError(
                f"Switch step {node.name!r} has no condition=, so headwater cannot tell which case to take.",
                location=_at(node),
                hint="Name the artifact whose value picks the case: self.next({...}, condition='attr').",
            )


@_rule
def switch_not_into_join(graph: FlowGraph) -> Iterator[GraphError]:
    for node in graph:
        if node.kind is not NodeKind.SWITCH:
            continue
        for key, target in node.switch_cases:
            if target in graph and graph[target].kind is NodeKind.JOIN:
                yield GraphError(
                    f"Switch step {node.name!r} sends case {key!r} straight to join step {target!r}; "
                    "the join could not tell which inputs to wait for.",
                    location=_at(node),
                    hint=f"Add a step between the switch and {target!r} for that case.",
                )


# --- @parallel ----------------------------------------------------------------------------


def _is_parallel(node: Node) -> bool:
    return any(getattr(d, "name", None) == "parallel" for d in node.decorators)


@_rule
def num_parallel_targets_parallel_step(graph: FlowGraph) -> Iterator[GraphError]:
    for node in graph:
        if node.kind is not NodeKind.PARALLEL:
            continue
        for target in node.out_funcs:
            if target in graph and not _is_parallel(graph[target]):
                yield GraphError(
                    f"Step {node.name!r} starts {target!r} with self.next(num_parallel=...), "
                    f"but step {target!r} has no @parallel decorator.",
                    location=_at(node),
                    hint=f"Put @parallel above @step on {target!r}, or drop num_parallel= for a single task.",
                )


@_rule
def parallel_step_followed_by_join(graph: FlowGraph) -> Iterator[GraphError]:
    for node in graph:
        if not _is_parallel(node) or node.is_end or not node.has_tail_next or node.invalid_tail_next:
            continue
        targets = [t for t in node.out_funcs if t in graph]
        if node.kind in (NodeKind.LINEAR, NodeKind.START) and len(targets) == 1 \
                and graph[targets[0]].kind is NodeKind.JOIN:
            continue
        if len(targets) != len(node.out_funcs):
            continue  # an unknown target: reported by its own rule
        after = f"step {targets[0]!r}, which is not a join" if len(targets) == 1 else "several steps"
        yield GraphError(
            f"@parallel step {node.name!r} must be followed by a join step, but it goes to {after}.",
            location=_at(node),
            hint=f"Go from {node.name!r} to a join step: def join(self, inputs): ... "
            "(the join gets one input per task of the gang).",
        )


@_rule
def parallel_step_reached_by_num_parallel(graph: FlowGraph) -> Iterator[GraphError]:
    for node in graph:
        if not _is_parallel(node):
            continue
        if node.is_start:
            yield GraphError(
                f"@parallel step {node.name!r} is the start step; a gang is started by the step before it.",
                location=node.location,
                hint=f"Add a start step that calls self.next(self.{node.name}, num_parallel=N).",
            )
        for pred in node.in_funcs:
            if graph[pred].kind is not NodeKind.PARALLEL:
                yield GraphError(
                    f"Step {node.name!r} has @parallel, but step {pred!r} reaches it without num_parallel=.",
                    location=_at(graph[pred]),
                    hint=f"Call self.next(self.{node.name}, num_parallel=N) in {pred!r}, "
                    f"or remove @parallel from {node.name!r}.",
                )
