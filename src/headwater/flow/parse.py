"""Reading a flow's source (authoring layer, internal): the trailing ``self.next(...)``
of every ``@step`` method, parsed with ``ast`` into a ``StepDraft`` per step, which
``headwater.flow.graph.build_graph`` assembles into the graph. Never raises for a
user mistake: it records what it saw, for lint to report.
"""

from __future__ import annotations

import ast
import functools
import inspect
import linecache
import os
import textwrap
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Callable

from ..exceptions import Location
from .nodekind import NodeKind

_FuncNode = ast.FunctionDef | ast.AsyncFunctionDef


@dataclass
class _ParsedFile:
    lines: list[str]  # the linecache lines it was parsed from
    functions: dict[int, _FuncNode]  # by first line (def line and first decorator line)
    classes: dict[str, list[tuple[int, int]]]  # class name -> [(first line, last line)]


# A flow file is parsed once per process; a file whose lines changed is parsed again.
_PARSED: dict[str, _ParsedFile] = {}


def parse_file(filename: str, module_globals: dict[str, Any] | None) -> _ParsedFile | None:
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
    parsed = parse_file(code.co_filename, getattr(func, "__globals__", None))
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
config_key_reader: ContextVar[Callable[[list[str]], tuple[bool, Any]] | None] = ContextVar(
    "config_key_reader", default=None)


def _config_key(node: ast.AST | None, self_name: str) -> tuple[bool, Any]:
    """Read a switch key written ``self.<config>.<key>...`` (its value from the applied configs)."""
    dotted: list[str] = []
    while isinstance(node, ast.Attribute):
        dotted.insert(0, node.attr)
        node = node.value
    reader = config_key_reader.get()
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
class StepDraft:
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


def _read_tail(d: StepDraft, fn: _FuncNode, file: str, source: str) -> None:
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


def _classify(d: StepDraft, call: ast.Call, self_name: str) -> str | None:
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


def _classify_switch(d: StepDraft, cases: ast.Dict, kwargs: dict[str, ast.expr], self_name: str) -> str | None:
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
def absolute_path(filename: str) -> str:
    return filename if filename.startswith("<") else os.path.abspath(filename)


def framework_members(flow_cls: type) -> frozenset[str]:
    names = set(RESERVED_NAMES)
    for klass in flow_cls.__mro__:
        module = getattr(klass, "__module__", "") or ""
        if module == "headwater" or module.startswith("headwater."):
            names.update(n for n in vars(klass) if not n.startswith("_"))
    return frozenset(names)


def step_code(func: Any) -> Any:
    """The code object of a step function (None for an exotic callable)."""
    return getattr(inspect.unwrap(getattr(func, "__func__", func)), "__code__", None)


def draft_step(name: str, func: Any) -> StepDraft:
    raw = inspect.unwrap(getattr(func, "__func__", func))
    code = getattr(raw, "__code__", None)
    if code is None:
        return StepDraft(name, Location(f"<{type(func).__name__}>", 0), 1, "", (), sourceless=True)
    file = absolute_path(code.co_filename)
    num_args = code.co_argcount + code.co_kwonlyargcount
    num_args += bool(code.co_flags & inspect.CO_VARARGS) + bool(code.co_flags & inspect.CO_VARKEYWORDS)
    doc = inspect.cleandoc(raw.__doc__) if isinstance(raw.__doc__, str) else ""
    found = _function_node(raw, code)
    line = found[0].lineno if found is not None else code.co_firstlineno
    d = StepDraft(
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


