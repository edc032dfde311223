"""The static graph of a flow, read from the source of its steps (authoring layer, internal).

``build_graph`` parses the trailing ``self.next(...)`` of every ``@step`` method
with ``ast`` and returns an immutable ``FlowGraph``. It never raises for a user
mistake: it records what it saw, and ``FlowGraph.lint`` (rules in ``lint.py``)
reports every problem at once.
"""

from __future__ import annotations

import ast
import enum
import functools
import graphlib
import inspect
import linecache
import os
import sys
import textwrap
import types
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from ..exceptions import GraphError, LintErrors, Location

# One open split level on the way to a step: (split step, first step of the branch taken).
Frame = tuple[str, str]
Frames = tuple[Frame, ...]


class NodeKind(enum.Enum):
    """What a step does after it runs (the values are Metaflow's ``_graph_info`` types)."""

    START = "start"
    LINEAR = "linear"
    SPLIT = "split-static"
    FOREACH = "split-foreach"
    PARALLEL = "split-parallel"  # self.next(self.step, num_parallel=N): a gang of N tasks
    SWITCH = "split-switch"
    JOIN = "join"
    END = "end"


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

    def switch_target(self, value: Any) -> str | None:
        """The step a switch goes to when its condition is ``value`` (None if no case matches).

        A value matches a case when it equals the key as written in the source, so
        ``1`` matches ``{1: ...}`` but ``"1"`` does not.
        """
        for (_, target), key in zip(self.switch_cases, self.switch_case_values):
            if value == key:
                return target
        return None


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


# ---------------------------------------------------------------------------------------
# Reading the source
# ---------------------------------------------------------------------------------------

_FuncNode = ast.FunctionDef | ast.AsyncFunctionDef


@dataclass
class _ParsedFile:
    lines: list[str]  # the linecache lines it was parsed from
    functions: dict[int, _FuncNode]  # by first line (def line and first decorator line)
    classes: dict[str, list[tuple[int, int]]]  # class name -> [(first line, last line)]


# A flow file is parsed once per process; a file whose lines changed is parsed again.
_PARSED: dict[str, _ParsedFile] = {}


def _parse_file(filename: str, module_globals: dict[str, Any] | None) -> _ParsedFile | None:
    lines = linecache.getlines(filename, module_globals)
    if not lines:
        return None
    cached = _PARSED.get(filename)
    if cached is not None and (cached.lines is lines or cached.lines == lines):
        return cached
    try:
        tree = ast.parse("".join(lines), filename)
    except (SyntaxError, ValueError):
        return None
    parsed = _ParsedFile(lines, {}, {})
    # Visit statements only (not expressions): a def or class is always a statement,
    # and skipping expressions makes indexing a large module several times faster.
    todo: list[ast.stmt] = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            parsed.functions.setdefault(node.lineno, node)
            if node.decorator_list:
                # co_firstlineno of a decorated function is its first decorator's line.
                parsed.functions.setdefault(node.decorator_list[0].lineno, node)
        elif isinstance(node, ast.ClassDef):
            parsed.classes.setdefault(node.name, []).append((node.lineno, node.end_lineno or node.lineno))
        for name in ("body", "orelse", "finalbody", "handlers", "cases"):
            block = getattr(node, name, None)
            if block:
                todo.extend(b for b in block if isinstance(b, ast.stmt))
                for b in block:
                    if isinstance(b, (ast.ExceptHandler, ast.match_case)):
                        todo.extend(b.body)
    for spans in parsed.classes.values():
        spans.sort()
    _PARSED[filename] = parsed
    return parsed


def _function_node(func: Any, code: Any) -> tuple[_FuncNode, str] | None:
    """The ``def`` of ``func`` (line numbers of its file) and its source text."""
    parsed = _parse_file(code.co_filename, getattr(func, "__globals__", None))
    node = parsed.functions.get(code.co_firstlineno) if parsed is not None else None
    if parsed is not None and node is not None and node.name == code.co_name:
        return node, "".join(parsed.lines[node.lineno - 1 : node.end_lineno])
    # Fallback (source not reachable through linecache as a whole file).
    try:
        lines, first = inspect.getsourcelines(func)
        tree = ast.parse(textwrap.dedent("".join(lines)))
    except (OSError, TypeError, SyntaxError, IndentationError):
        return None
    ast.increment_lineno(tree, max(first, 1) - 1)
    for stmt in tree.body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return stmt, "".join(lines)
    return None


def _self_attr(node: ast.AST, self_name: str) -> str | None:
    """``x`` for an expression ``self.x``, else None."""
    if (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == self_name
    ):
        return node.attr
    return None


def _is_next_call(node: ast.AST, self_name: str) -> bool:
    return isinstance(node, ast.Call) and _self_attr(node.func, self_name) == "next"


# While build_graph runs: reads ``self.<config>.<key>`` switch keys from the flow's applied configs.
_config_key_reader: ContextVar[Callable[[list[str]], tuple[bool, Any]] | None] = ContextVar(
    "_config_key_reader", default=None)


def _config_key(node: ast.AST | None, self_name: str) -> tuple[bool, Any]:
    """Read a switch key written ``self.<config>.<key>...`` (its value from the applied configs)."""
    dotted: list[str] = []
    while isinstance(node, ast.Attribute):
        dotted.insert(0, node.attr)
        node = node.value
    reader = _config_key_reader.get()
    if not (isinstance(node, ast.Name) and node.id == self_name and len(dotted) >= 2 and reader):
        return False, None
    ok, value = reader(dotted)
    return (True, value) if ok and isinstance(value, (str, int, float)) else (False, None)


def _literal_key(node: ast.AST | None) -> tuple[bool, Any]:
    """Read a switch key: a str, int, float or bool literal (a leading minus is allowed)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, int, float)):
        return True, node.value
    if (
        isinstance(node, ast.UnaryOp)
        and isinstance(node.op, (ast.USub, ast.UAdd))
        and isinstance(node.operand, ast.Constant)
        and type(node.operand.value) in (int, float)
    ):
        v = node.operand.value
        return True, -v if isinstance(node.op, ast.USub) else v
    return False, None


@dataclass
class _Draft:
    """What one step's source says, before the graph around it is known."""

    name: str
    location: Location
    num_args: int
    doc: str
    decorators: tuple[Any, ...]
    form: str | None = None  # "linear" | "split" | "foreach" | "parallel" | "switch" | None (no valid next)
    targets: list[str] = field(default_factory=list)
    foreach_param: str | None = None
    condition: str | None = None
    num_parallel: int | None = None
    switch_cases: list[tuple[str, str]] = field(default_factory=list)
    switch_case_values: list[Any] = field(default_factory=list)
    next_location: Location | None = None
    has_tail_next: bool = False
    invalid_tail_next: bool = False
    tail_error: str | None = None
    stray_next_lines: tuple[int, ...] = ()
    kind: NodeKind = NodeKind.LINEAR
    sourceless: bool = False


def _read_tail(d: _Draft, fn: _FuncNode, file: str, source: str) -> None:
    """Fill ``d`` from the function's last statement, which should be ``self.next(...)``."""
    params = fn.args.posonlyargs + fn.args.args
    self_name = params[0].arg if params else "self"
    body = fn.body
    tail = body[-1]
    call = tail.value if isinstance(tail, ast.Expr) and _is_next_call(tail.value, self_name) else None
    # Calls of self.next anywhere else (inside an if, a loop, or not last). The text
    # test first spares walking the whole body of the usual step with one call.
    if source.count(".next") > (call is not None):
        stray: list[int] = []
        for stmt in body if call is None else body[:-1]:
            for sub in ast.walk(stmt):
                if _is_next_call(sub, self_name):
                    stray.append(sub.lineno)
        if call is not None:
            for arg in [*call.args, *(k.value for k in call.keywords)]:
                for sub in ast.walk(arg):
                    if _is_next_call(sub, self_name):
                        stray.append(sub.lineno)
        d.stray_next_lines = tuple(sorted(stray))
    if call is None:
        return
    d.has_tail_next = True
    d.next_location = Location(file, call.lineno)
    problem = _classify(d, call, self_name)
    if problem is not None:
        d.invalid_tail_next = True
        d.form = None
        d.targets = []
        d.tail_error = f"`{ast.unparse(call)}`: {problem}"


def _classify(d: _Draft, call: ast.Call, self_name: str) -> str | None:
    """Set the transition of ``d`` from its ``self.next`` call; return why it is invalid, if it is."""
    if any(isinstance(a, ast.Starred) for a in call.args) or any(k.arg is None for k in call.keywords):
        return "self.next() cannot take *args or **kwargs; name the steps."
    kwargs: dict[str, ast.expr] = {}
    for kw in call.keywords:
        if kw.arg not in ("foreach", "condition", "num_parallel"):
            return f"self.next() has no keyword argument {kw.arg}= (only foreach=, condition= and num_parallel=)."
        kwargs[str(kw.arg)] = kw.value
    if not call.args:
        return "self.next() needs at least one step, e.g. self.next(self.end)."

    if "num_parallel" in kwargs and len(kwargs) > 1:
        return "num_parallel= cannot be combined with foreach= or condition=."
    if len(call.args) == 1 and isinstance(call.args[0], ast.Dict):
        return _classify_switch(d, call.args[0], kwargs, self_name)
    if any(isinstance(a, ast.Dict) for a in call.args):
        return "a switch takes a single dict of cases and nothing else."

    targets: list[str] = []
    for arg in call.args:
        name = _self_attr(arg, self_name)
        if name is None:
            return f"{ast.unparse(arg)} is not a step; pass steps as {self_name}.<step_name>."
        if name in targets:
            return f"{self_name}.{name} is given twice."
        targets.append(name)
    if "condition" in kwargs:
        return "condition= needs a dict of cases, e.g. self.next({'a': self.a, 'b': self.b}, condition='attr')."
    if "foreach" in kwargs:
        if len(targets) != 1:
            return "a foreach goes to exactly one step, e.g. self.next(self.body, foreach='items')."
        value = kwargs["foreach"]
        if not (isinstance(value, ast.Constant) and isinstance(value.value, str) and value.value):
            return "foreach= must be a string literal naming an artifact, e.g. foreach='items'."
        d.form, d.foreach_param = "foreach", value.value
    elif "num_parallel" in kwargs:
        if len(targets) != 1:
            return "num_parallel= goes to exactly one @parallel step, e.g. self.next(self.train, num_parallel=4)."
        value = kwargs["num_parallel"]
        if isinstance(value, ast.Constant):
            if type(value.value) is not int or value.value < 1:
                return f"num_parallel={ast.unparse(value)} must be a positive integer."
            d.num_parallel = value.value
        d.form = "parallel"
    else:
        d.form = "linear" if len(targets) == 1 else "split"
    d.targets = targets
    return None


def _classify_switch(d: _Draft, cases: ast.Dict, kwargs: dict[str, ast.expr], self_name: str) -> str | None:
    if "foreach" in kwargs:
        return "a switch cannot also be a foreach."
    cond = kwargs.get("condition")
    if cond is not None:
        if not (isinstance(cond, ast.Constant) and isinstance(cond.value, str) and cond.value):
            return "condition= must be a string literal naming an artifact, e.g. condition='mode'."
        d.condition = cond.value
    keys: list[Any] = []
    for key_node, value_node in zip(cases.keys, cases.values):
        if key_node is None:
            return "a switch's cases must be written out; **dict unpacking is not allowed."
        ok, key = _literal_key(key_node)
        if not ok:
            ok, key = _config_key(key_node, self_name)
        if not ok:
            return (
                f"switch key {ast.unparse(key_node)} must be a string or number literal, "
                "or self.<config>.<key> naming a string or number in one of the flow's Configs."
            )
        target = _self_attr(value_node, self_name)
        if target is None:
            return (
                f"switch case {ast.unparse(key_node)} must map to a step ({self_name}.<step_name>), "
                f"not {ast.unparse(value_node)}."
            )
        for other in keys:
            if other == key or str(other) == str(key):
                return f"switch keys {other!r} and {key!r} cannot be told apart."
        keys.append(key)
        d.switch_cases.append((key if isinstance(key, str) else str(key), target))
        d.switch_case_values.append(key)
        if target not in d.targets:
            d.targets.append(target)
    d.form = "switch"
    return None


# ---------------------------------------------------------------------------------------
# Building the graph
# ---------------------------------------------------------------------------------------

# Members of Metaflow's FlowSpec that a step may not shadow (FlowSpec's own members are
# added from the class hierarchy).
RESERVED_NAMES = frozenset(
    {"name", "next", "input", "index", "cmd", "foreach_stack", "merge_artifacts", "script_name"}
)


@functools.lru_cache(maxsize=256)
def _abs(filename: str) -> str:
    return filename if filename.startswith("<") else os.path.abspath(filename)


def _framework_members(flow_cls: type) -> frozenset[str]:
    names = set(RESERVED_NAMES)
    for klass in flow_cls.__mro__:
        module = getattr(klass, "__module__", "") or ""
        if module == "headwater" or module.startswith("headwater."):
            names.update(n for n in vars(klass) if not n.startswith("_"))
    return frozenset(names)


def _code(func: Any) -> Any:
    """The code object of a step function (None for an exotic callable)."""
    return getattr(inspect.unwrap(getattr(func, "__func__", func)), "__code__", None)


def _draft_step(name: str, func: Any) -> _Draft:
    raw = inspect.unwrap(getattr(func, "__func__", func))
    code = getattr(raw, "__code__", None)
    if code is None:
        return _Draft(name, Location(f"<{type(func).__name__}>", 0), 1, "", (), sourceless=True)
    file = _abs(code.co_filename)
    num_args = code.co_argcount + code.co_kwonlyargcount
    num_args += bool(code.co_flags & inspect.CO_VARARGS) + bool(code.co_flags & inspect.CO_VARKEYWORDS)
    doc = inspect.cleandoc(raw.__doc__) if isinstance(raw.__doc__, str) else ""
    found = _function_node(raw, code)
    line = found[0].lineno if found is not None else code.co_firstlineno
    d = _Draft(
        name=name,
        location=Location(file, line),
        num_args=num_args,
        doc=doc,
        decorators=tuple(getattr(func, "decorators", ()) or ()),
    )
    if found is None:
        d.sourceless = True
        return d
    _read_tail(d, found[0], file, found[1])
    return d


def _class_location(flow_cls: type, drafts: dict[str, _Draft]) -> Location | None:
    """The line of ``class <Flow>``, found in the files its methods come from."""
    step_lines = [d.location for d in drafts.values()]
    files = [loc.file for loc in step_lines]
    for value in vars(flow_cls).values():
        code = getattr(value, "__code__", None)
        if isinstance(code, types.CodeType):
            files.append(_abs(code.co_filename))
    module_file = getattr(sys.modules.get(flow_cls.__module__), "__file__", None)
    if module_file:
        files.append(_abs(module_file))
    for file in dict.fromkeys(files):
        parsed = _parse_file(file, None)
        spans = parsed.classes.get(flow_cls.__name__, []) if parsed is not None else []
        for first, last in spans:
            if any(loc.file == file and first <= loc.line <= last for loc in step_lines):
                return Location(file, first)
        if spans:
            return Location(file, spans[0][0])
    return None


def _resolve(
    drafts: dict[str, _Draft], funcs: dict[str, Any], attr: str, default: str
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


def _kind(d: _Draft, is_start: bool, is_end: bool) -> NodeKind:
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
    for filename in {code.co_filename for code in map(_code, funcs.values()) if code is not None}:
        linecache.checkcache(filename)
    from .config import read_switch_key

    token = _config_key_reader.set(functools.partial(read_switch_key, flow_cls))
    try:
        drafts = {name: _draft_step(name, func) for name, func in funcs.items()}
    finally:
        _config_key_reader.reset(token)
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
        reserved=_framework_members(flow_cls),
        sourceless=frozenset(n for n, d in drafts.items() if d.sourceless),
        location=_class_location(flow_cls, drafts),
    )
