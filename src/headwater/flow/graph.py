"""The static graph of a flow, read from the source of its steps (authoring layer, internal).

``build_graph`` reads the trailing ``self.next(...)`` of every ``@step`` method
(``headwater.flow.parse``), connects the steps, and returns an immutable ``FlowGraph``. It never raises for a user
mistake: it records what it saw, and ``FlowGraph.lint`` (rules in ``lint.py``)
reports every problem at once.
"""

from __future__ import annotations

import functools
import graphlib
import inspect
import linecache
import sys
import types
from dataclasses import dataclass, field
from typing import Any, Iterator

from ..exceptions import GraphError, LintErrors, Location
from .nodekind import NodeKind
from .parse import StepDraft, absolute_path, config_key_reader, draft_step, framework_members, parse_file, step_code

# One open split level on the way to a step: (split step, first step of the branch taken).
Frame = tuple[str, str]
Frames = tuple[Frame, ...]


# Metaflow's ``graph[step].type`` strings, which user tests compare against.
_COMPAT_TYPE = {
    NodeKind.START: "start",
    NodeKind.LINEAR: "linear",
    NodeKind.SPLIT: "split",
    NodeKind.FOREACH: "foreach",
    NodeKind.PARALLEL: "foreach",  # Metaflow types a num_parallel split as a foreach
    NodeKind.SWITCH: "split-switch",
    NodeKind.JOIN: "join",
    NodeKind.END: "end",
}

_SPLITTING = (NodeKind.SPLIT, NodeKind.FOREACH, NodeKind.PARALLEL)
#: Splits whose target runs as several tasks of one step (joined by index).
FANOUT = (NodeKind.FOREACH, NodeKind.PARALLEL)
_MAX_CONTEXTS = 16  # per step; bounds the work on pathological malformed graphs


@dataclass(frozen=True)
class Node:
    """One step of the graph.

    ``out_funcs`` lists the targets as written in ``self.next`` (for a switch: the
    case targets in order, without repeats), so it may name steps that do not
    exist; lint reports those. ``split_parents`` is the stack of open split and
    foreach steps around the step, outermost first; for a join it ends with the
    split the join closes. ``is_inside_foreach`` is true when the step runs once
    per item of some foreach (a foreach's own join is not inside it).
    """

    name: str
    kind: NodeKind
    location: Location
    out_funcs: tuple[str, ...] = ()
    in_funcs: tuple[str, ...] = ()
    foreach_param: str | None = None
    switch_cases: tuple[tuple[str, str], ...] = ()
    switch_case_values: tuple[Any, ...] = ()
    condition: str | None = None
    #: A ``num_parallel`` split: the count when written as an int literal, else
    #: None (an expression, evaluated when the step runs).
    num_parallel: int | None = None
    num_args: int = 1
    doc: str = ""
    next_location: Location | None = None
    split_parents: tuple[str, ...] = ()
    matching_join: str | None = None
    is_inside_foreach: bool = False
    has_tail_next: bool = False
    invalid_tail_next: bool = False
    tail_error: str | None = None
    stray_next_lines: tuple[int, ...] = ()
    is_start: bool = False
    is_end: bool = False
    decorators: tuple[Any, ...] = field(default=(), compare=False)

    @property
    def type(self) -> str:
        """Metaflow's type string: start, linear, split, foreach, split-switch, join or end."""
        return _COMPAT_TYPE[self.kind]

    def switch_case(self, value: Any) -> tuple[Any, str] | None:
        """``(key, target)`` of the case a switch takes when its condition is ``value``
        (None if no case matches).

        A value matches a case when it equals the key as written in the source (as a
        dict lookup does, which is what ``self.next`` checks), so ``1`` matches
        ``{1: ...}`` but ``"1"`` does not.
        """
        for (_, target), key in zip(self.switch_cases, self.switch_case_values):
            if value == key:
                return key, target
        return None

    def switch_target(self, value: Any) -> str | None:
        """The step a switch goes to when its condition is ``value`` (None if no case matches)."""
        case = self.switch_case(value)
        return case[1] if case is not None else None


@dataclass(frozen=True, eq=False)
class FlowGraph:
    """The immutable graph of one flow class, as built by ``build_graph``.

    Iterating yields the nodes in ``sorted_nodes`` order (topological, with a
    step's branches listed one after the other).
    """

    name: str
    nodes: dict[str, Node]
    start: str | None
    end: str | None
    sorted_nodes: list[str]
    doc: str = ""
    #: Steps marked ``@step(start=True)`` / ``@step(end=True)``, in line order.
    annotated_starts: tuple[str, ...] = ()
    annotated_ends: tuple[str, ...] = ()
    #: How each step is reached: ``(predecessor, open splits on that edge)`` per
    #: incoming edge, back edges excluded. Lint uses it to check split/join balance.
    arrivals: dict[str, tuple[tuple[str, Frames], ...]] = field(default_factory=dict)
    #: Names used as ``self.next`` targets that are methods of the class but not steps.
    undecorated: frozenset[str] = frozenset()
    #: Names of ``FlowSpec`` members a step name must not shadow.
    reserved: frozenset[str] = frozenset()
    #: Steps whose source code could not be read.
    sourceless: frozenset[str] = frozenset()
    #: Where the flow class is defined (for problems that concern no single step).
    location: Location | None = None

    def __getitem__(self, name: str) -> Node:
        return self.nodes[name]

    def __iter__(self) -> Iterator[Node]:
        return (self.nodes[n] for n in self.sorted_nodes)

    def __contains__(self, name: object) -> bool:
        return name in self.nodes

    def __len__(self) -> int:
        return len(self.nodes)

    def lint(self) -> list[GraphError]:
        """Every problem in the graph, sorted by line (empty when the graph is valid)."""
        from .lint import lint_graph

        return lint_graph(self)

    def validate(self) -> None:
        """Raise ``LintErrors`` listing every problem, if there is any."""
        errors = self.lint()
        if errors:
            raise LintErrors(errors)

    def to_info(self) -> dict[str, Any]:
        """A JSON-serialisable description of the graph (``current.graph``, stored with each run)."""
        steps: dict[str, Any] = {}
        for node in self:
            steps[node.name] = {
                "type": node.kind.value,
                "next": list(node.out_funcs),
                "in": list(node.in_funcs),
                "foreach_param": node.foreach_param,
                "switch_cases": {k: v for k, v in node.switch_cases},
                "switch_case_values": list(node.switch_case_values),
                "condition": node.condition,
                "num_parallel": node.num_parallel,
                "split_parents": list(node.split_parents),
                "matching_join": node.matching_join,
                "inside_foreach": node.is_inside_foreach,
                "doc": node.doc,
                "file": node.location.file,
                "line": node.location.line,
                "decorators": [_decorator_name(d) for d in node.decorators],
            }
        return {
            "name": self.name,
            "doc": self.doc,
            "start": self.start,
            "end": self.end,
            "order": list(self.sorted_nodes),
            "steps": steps,
        }

    def output_dot(self) -> str:
        """The graph in Graphviz ``dot`` syntax."""
        from .show import format_dot

        return format_dot(self)


def _decorator_name(deco: Any) -> str:
    return str(getattr(deco, "name", None) or type(deco).__name__)


def _class_location(flow_cls: type, drafts: dict[str, StepDraft]) -> Location | None:
    """The line of ``class <Flow>``, found in the files its methods come from."""
    step_lines = [d.location for d in drafts.values()]
    files = [loc.file for loc in step_lines]
    for value in vars(flow_cls).values():
        code = getattr(value, "__code__", None)
        if isinstance(code, types.CodeType):
            files.append(absolute_path(code.co_filename))
    module_file = getattr(sys.modules.get(flow_cls.__module__), "__file__", None)
    if module_file:
        files.append(absolute_path(module_file))
    for file in dict.fromkeys(files):
        parsed = parse_file(file, None)
        spans = parsed.classes.get(flow_cls.__name__, []) if parsed is not None else []
        for first, last in spans:
            if any(loc.file == file and first <= loc.line <= last for loc in step_lines):
                return Location(file, first)
        if spans:
            return Location(file, spans[0][0])
    return None


def _resolve(
    drafts: dict[str, StepDraft], funcs: dict[str, Any], attr: str, default: str
) -> tuple[str | None, tuple[str, ...]]:
    """The start (or end) step, and the steps marked with ``@step(<attr>=True)``."""
    marked = (n for n in drafts if getattr(funcs[n], attr, False) is True)
    annotated = tuple(sorted(marked, key=lambda n: drafts[n].location.line))
    if annotated:
        return annotated[0], annotated
    if default in drafts:
        return default, annotated
    if len(drafts) == 1:
        return next(iter(drafts)), annotated
    return None, annotated


def _kind(d: StepDraft, is_start: bool, is_end: bool) -> NodeKind:
    if is_end:
        return NodeKind.END
    if d.form == "switch":
        return NodeKind.SWITCH
    if d.form == "foreach":
        return NodeKind.FOREACH
    if d.form == "parallel":
        return NodeKind.PARALLEL
    if d.form == "split":
        return NodeKind.SPLIT
    if is_start:
        return NodeKind.START
    if d.form == "linear" and d.num_args == 2:
        return NodeKind.JOIN
    return NodeKind.LINEAR


def _back_edges(
    names: list[str], edges: dict[str, list[str]], roots: list[str]
) -> tuple[set[tuple[str, str]], dict[str, int]]:
    """Edges that close a cycle in a depth-first walk from ``roots``, and each step's preorder rank."""
    rank: dict[str, int] = {}
    back: set[tuple[str, str]] = set()
    on_path: set[str] = set()
    for root in roots:
        if root in rank:
            continue
        rank[root] = len(rank)
        on_path.add(root)
        stack: list[tuple[str, Iterator[str]]] = [(root, iter(edges[root]))]
        while stack:
            name, children = stack[-1]
            for child in children:
                if child in on_path:
                    back.add((name, child))
                elif child not in rank:
                    rank[child] = len(rank)
                    on_path.add(child)
                    stack.append((child, iter(edges[child])))
                    break
            else:
                stack.pop()
                on_path.discard(name)
    return back, rank


def _topological(names: list[str], edges: dict[str, list[str]], rank: dict[str, int]) -> list[str]:
    """Topological order of an acyclic ``edges``, following one branch to its end before the next."""
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for name in names:
        sorter.add(name)
        for child in edges[name]:
            sorter.add(child, name)
    sorter.prepare()
    order: list[str] = []
    ready: list[str] = []
    while sorter.is_active():
        ready.extend(sorted(sorter.get_ready(), key=lambda n: -rank[n]))
        if not ready:  # pragma: no cover - impossible for an acyclic graph
            break
        name = ready.pop()
        order.append(name)
        sorter.done(name)
    return order


def build_graph(flow_cls: type) -> FlowGraph:
    """Build the static graph of ``flow_cls`` from the source of its ``@step`` methods.

    Never raises for a mistake in the flow; call ``validate()`` (or ``lint()``) on
    the result to learn about them.

    Examples
    --------
    >>> graph = build_graph(HelloFlow)
    >>> [node.type for node in graph]
    ['start', 'end']
    """
    funcs: dict[str, Any] = {}
    methods: set[str] = set()
    for attr in dir(flow_cls):
        try:
            value = getattr(flow_cls, attr)
        except Exception:  # a descriptor that fails on the class is not a step
            continue
        if not callable(value):
            continue
        methods.add(attr)
        if getattr(value, "is_step", False) is True:
            funcs[attr] = value

    # Like inspect.getsource: re-read a flow file that changed on disk since it was cached.
    for filename in {code.co_filename for code in map(step_code, funcs.values()) if code is not None}:
        linecache.checkcache(filename)
    from .config import read_switch_key

    token = config_key_reader.set(functools.partial(read_switch_key, flow_cls))
    try:
        drafts = {name: draft_step(name, func) for name, func in funcs.items()}
    finally:
        config_key_reader.reset(token)
    start, starts = _resolve(drafts, funcs, "is_start", "start")
    end, ends = _resolve(drafts, funcs, "is_end", "end")
    for name, d in drafts.items():
        d.kind = _kind(d, name == start, name == end)

    by_line = sorted(drafts, key=lambda n: (drafts[n].location.file, drafts[n].location.line, n))
    edges = {n: [t for t in drafts[n].targets if t in drafts] for n in by_line}
    roots = ([start] if start is not None else []) + by_line
    back, rank = _back_edges(by_line, edges, roots)
    dag = {n: [t for t in edges[n] if (n, t) not in back] for n in by_line}
    order = _topological(by_line, dag, rank)

    in_funcs: dict[str, list[str]] = {n: [] for n in by_line}
    for n in order:
        for t in edges[n]:
            if n not in in_funcs[t]:
                in_funcs[t].append(n)

    # Walk the DAG in order, carrying the open splits along each edge.
    arrivals: dict[str, list[tuple[str, Frames]]] = {n: [] for n in by_line}
    split_parents: dict[str, Frames] = {}
    matching_join: dict[str, str] = {}
    # A step taking inputs closes a split even when it is malformed (e.g. also splits);
    # lint reports the malformation once instead of unbalancing every split around it.
    closing = {
        n for n, d in drafts.items()
        if d.kind is NodeKind.JOIN or (d.num_args == 2 and d.kind in (*_SPLITTING, NodeKind.SWITCH))
    }
    for n in order:
        kind = drafts[n].kind
        came = arrivals[n]
        if n in closing:
            deepest = max((f for _, f in came), key=len, default=())
            split_parents[n] = deepest
            if deepest:
                matching_join.setdefault(deepest[-1][0], n)
            leaving = [deepest[:-1]]
        else:
            # Normally one context; several only in a malformed graph (branches meeting
            # without a join). Passing all of them on keeps lint from reporting the same
            # problem again at every join downstream.
            leaving = list(dict.fromkeys(f for _, f in came))[:_MAX_CONTEXTS] or [()]
            split_parents[n] = leaving[0]
        for t in dag[n]:
            for after in leaving:
                frames = after + ((n, t),) if kind in _SPLITTING else after
                if (n, frames) not in arrivals[t]:
                    arrivals[t].append((n, frames))

    kinds = {n: d.kind for n, d in drafts.items()}
    nodes: dict[str, Node] = {}
    for n in order:
        d = drafts[n]
        frames = split_parents[n]
        open_frames = frames[:-1] if n in closing else frames
        nodes[n] = Node(
            name=n,
            kind=d.kind,
            location=d.location,
            out_funcs=tuple(d.targets),
            in_funcs=tuple(in_funcs[n]),
            foreach_param=d.foreach_param,
            switch_cases=tuple(d.switch_cases),
            switch_case_values=tuple(d.switch_case_values),
            condition=d.condition,
            num_parallel=d.num_parallel,
            num_args=d.num_args,
            doc=d.doc,
            next_location=d.next_location,
            split_parents=tuple(s for s, _ in frames),
            matching_join=matching_join.get(n),
            is_inside_foreach=any(kinds[s] in FANOUT for s, _ in open_frames),
            has_tail_next=d.has_tail_next,
            invalid_tail_next=d.invalid_tail_next,
            tail_error=d.tail_error,
            stray_next_lines=d.stray_next_lines,
            is_start=n == start,
            is_end=n == end,
            decorators=d.decorators,
        )

    undecorated = frozenset(t for d in drafts.values() for t in d.targets if t not in drafts and t in methods)
    flow_doc = flow_cls.__dict__.get("__doc__")
    return FlowGraph(
        name=flow_cls.__name__,
        nodes=nodes,
        start=start,
        end=end,
        sorted_nodes=order,
        doc=inspect.cleandoc(flow_doc) if isinstance(flow_doc, str) else "",
        annotated_starts=starts,
        annotated_ends=ends,
        arrivals={n: tuple(a) for n, a in arrivals.items()},
        undecorated=undecorated,
        reserved=framework_members(flow_cls),
        sourceless=frozenset(n for n, d in drafts.items() if d.sourceless),
        location=_class_location(flow_cls, drafts),
    )
