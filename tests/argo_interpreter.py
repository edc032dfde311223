"""A small Argo Workflows interpreter that runs compiled WorkflowTemplates as local processes (test helper).

No Argo controller runs here, so tests execute what the Argo compiler emits with this interpreter. It
follows Argo's documented semantics for the subset a compiler emits (DAG templates, container templates,
parameters, withParam/withItems, when, depends, retryStrategy, activeDeadlineSeconds) and raises
``UnsupportedConstructError`` for any field it does not implement, so new compiler output fails loudly.
A Workflow that only references a WorkflowTemplate (``spec.workflowTemplateRef``, what a submit or a
resume creates) runs given that template (``run(..., workflow_templates=[...])``).
See docs/argo-testing.md, "How compiled workflows are run in tests".
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import string
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from headwater.exceptions import HeadwaterException


class InterpreterError(HeadwaterException):
    """A WorkflowTemplate the interpreter cannot run as written."""

    headline = "Argo interpreter error"


class UnsupportedConstructError(InterpreterError):
    """The template uses a field or expression the interpreter does not implement."""

    headline = "Unsupported Argo construct"


class NodePhase(str, Enum):
    """Argo's node phases (the subset the interpreter produces)."""

    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    ERROR = "Error"
    SKIPPED = "Skipped"
    OMITTED = "Omitted"


class NodeType(str, Enum):
    """Argo's node types (the subset the interpreter produces)."""

    DAG = "DAG"
    TASK_GROUP = "TaskGroup"
    RETRY = "Retry"
    POD = "Pod"
    SKIPPED = "Skipped"


# Fields the interpreter understands, per object. Anything else raises UnsupportedConstructError.
WORKFLOW_KEYS = {"apiVersion", "kind", "metadata", "spec"}
SPEC_KEYS = {"entrypoint", "arguments", "templates", "activeDeadlineSeconds"}
REF_SPEC_KEYS = {"workflowTemplateRef", "arguments"}  # a Workflow that runs a WorkflowTemplate
TEMPLATE_KEYS = {"name", "inputs", "outputs", "container", "dag", "retryStrategy", "activeDeadlineSeconds"}
CONTAINER_KEYS = {"command", "args", "env", "workingDir"}
TASK_KEYS = {"name", "template", "arguments", "dependencies", "depends", "withParam", "withItems", "when",
             "continueOn"}
RETRY_KEYS = {"limit", "retryPolicy"}
RETRY_POLICIES = ("OnFailure", "Always")  # the first is Argo's default
# Fields that only matter to Kubernetes (where and in what image a pod runs): accepted, no local effect.
NO_LOCAL_EFFECT = {
    # One process runs at a time here, so any parallelism limit holds; priority orders nothing.
    "spec": {"serviceAccountName", "podMetadata", "workflowMetadata", "parallelism", "priority"},
    "template": {"metadata", "nodeSelector", "tolerations", "serviceAccountName"},
    "container": {"image", "imagePullPolicy", "resources"},
    "retryStrategy": {"backoff"},  # retries run at once: no waiting in tests
}

PHASES_DONE_OK = {NodePhase.SUCCEEDED, NodePhase.SKIPPED}
_VARIABLE = re.compile(r"\{\{\s*([^{}]+?)\s*\}\}")


@dataclass
class Node:
    """One node of the workflow's status tree, named as Argo names them (``wf.task(0:item).sub``)."""

    name: str
    display_name: str
    type: NodeType
    template: str | None = None
    phase: NodePhase = NodePhase.SUCCEEDED
    message: str = ""
    inputs: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    children: list[Node] = field(default_factory=list)
    exit_code: int | None = None
    retries: int | None = None
    stdout: str = ""
    stderr: str = ""


@dataclass
class WorkflowRun:
    """What running a Workflow produced: the phase, the node tree, and the pods in the order they ran."""

    name: str
    phase: NodePhase
    root: Node
    ran: list[str]
    nodes: dict[str, Node]

    def node(self, name: str) -> Node:
        """The node with this full name (``wf.task``), or an error listing the names there are."""
        if name not in self.nodes:
            raise KeyError(f"No node {name!r}; nodes are: {sorted(self.nodes)}")
        return self.nodes[name]

    def phases(self) -> dict[str, str]:
        """Every node's full name mapped to its phase's value (easy to compare in asserts)."""
        return {n: node.phase.value for n, node in self.nodes.items()}


def _check_keys(obj: Mapping[str, Any], allowed: set[str], where: str, kind: str = "") -> None:
    unknown = set(obj) - allowed - NO_LOCAL_EFFECT.get(kind, set())
    if unknown:
        raise UnsupportedConstructError(
            f"{where} uses {sorted(unknown)}, which the Argo interpreter does not implement.",
            hint="Implement the field in tests/argo_interpreter.py (following Argo's documented "
                 "semantics), or stop emitting it.",
        )


def substitute(text: str, scope: Mapping[str, str], where: str) -> str:
    """Replace every ``{{name}}`` and ``{{=expression}}`` in ``text``; an unknown name is an error."""
    out, pos = [], 0
    while (start := text.find("{{", pos)) >= 0:
        out.append(text[pos:start])
        if text.startswith("{{=", start):
            end = _expression_end(text, start + 3, where)
            out.append(evaluate_expression(text[start + 3:end], scope, where))
            pos = end + 2
            continue
        match = _VARIABLE.match(text, start)
        if not match:
            raise InterpreterError(f"{where}: cannot parse the template tag in {text[start:]!r}.")
        key = match.group(1)
        if key not in scope:
            raise InterpreterError(f"{where} refers to {{{{{key}}}}}, which is not defined there.",
                                   hint=f"Defined names: {sorted(scope)}.")
        out.append(scope[key])
        pos = match.end()
    out.append(text[pos:])
    return "".join(out)


def _expression_end(text: str, pos: int, where: str) -> int:
    """Where the ``}}`` closing an expression tag starts (braces and quotes inside are skipped)."""
    depth, quote = 0, ""
    for i in range(pos, len(text)):
        c = text[i]
        if quote:
            quote = "" if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c == "{":
            depth += 1
        elif c == "}" and depth:
            depth -= 1
        elif text.startswith("}}", i):
            return i
    raise InterpreterError(f"{where}: the expression tag in {text!r} is not closed.")


# -- the part of Argo's expression language ({{=...}}, expr-lang + sprig) a compiler emits --------------

_EXPR_TOKEN = re.compile(r"\s*(?:('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")|(\d+)|([A-Za-z_][A-Za-z0-9_]*)|(.))")
_EXPR_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "asInt": lambda v: int(v),
    "string": lambda v: v if isinstance(v, str) else json.dumps(v),
    "sprig.join": lambda sep, items: sep.join(i if isinstance(i, str) else json.dumps(i) for i in items),
    "sprig.until": lambda n: list(range(int(n))),
}


def _nest(scope: Mapping[str, str]) -> dict[str, Any]:
    """``{"tasks.a.outputs.parameters.x": v}`` as nested dicts, for member access in expressions."""
    root: dict[str, Any] = {}
    for key, value in scope.items():
        parts = key.split(".")
        # A parameter's name may hold dots: everything after "parameters." is one name.
        if "parameters" in parts:
            cut = parts.index("parameters") + 1
            parts = parts[:cut] + [".".join(parts[cut:])]
        node = root
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                break
        else:
            node[parts[-1]] = value
    return root


def evaluate_expression(source: str, scope: Mapping[str, str], where: str) -> str:
    """Evaluate an expression tag's body: literals, ``+``, member access, ``map(list, {... # ...})``,
    ``asInt``, ``string``, ``sprig.join`` and ``sprig.until``. Anything else is unsupported."""
    tokens: list[tuple[str, str]] = []
    for m in _EXPR_TOKEN.finditer(source.strip()):
        kind = "str" if m.group(1) else "num" if m.group(2) else "name" if m.group(3) else "op"
        tokens.append((kind, m.group(m.lastindex or 0)))
    pos = 0

    def fail(msg: str) -> UnsupportedConstructError:
        return UnsupportedConstructError(f"{where}: expression {source!r}: {msg}.",
                                         hint="The interpreter implements only the expression forms "
                                              "its docstring lists.")

    def take(value: str | None = None) -> tuple[str, str]:
        nonlocal pos
        if pos >= len(tokens) or (value is not None and tokens[pos][1] != value):
            raise fail(f"expected {value!r}" if value else "unexpected end")
        pos += 1
        return tokens[pos - 1]

    def peek() -> str | None:
        return tokens[pos][1] if pos < len(tokens) else None

    # The parser builds closures taking the value of '#', so map() can evaluate its predicate per element.
    def additive() -> Callable[[Any], Any]:
        left = postfix()
        while peek() == "+":
            take("+")
            lhs, rhs = left, postfix()
            left = lambda h, lhs=lhs, rhs=rhs: lhs(h) + rhs(h)  # noqa: E731
        return left

    def postfix() -> Callable[[Any], Any]:
        kind, value = take()
        if kind == "str":
            literal = json.loads('"' + value[1:-1].replace('"', '\\"') + '"')
            return lambda h: literal
        if kind == "num":
            return lambda h: int(value)
        if value == "#":
            return lambda h: h
        if value == "(":
            inner = additive()
            take(")")
            return inner
        if value == "{":
            body = additive()
            take("}")
            return lambda h: body
        if kind != "name":
            raise fail(f"unexpected {value!r}")
        path = [value]
        while peek() == "." and path[0] in ("sprig",):
            take(".")
            path.append(take()[1])
        name = ".".join(path)
        if peek() == "(":
            take("(")
            args = [additive()]
            while peek() == ",":
                take(",")
                args.append(additive())
            take(")")
            if name == "map" and len(args) == 2:
                items, pred = args
                return lambda h: [pred(h)(x) for x in items(h)]
            if name not in _EXPR_FUNCTIONS:
                raise fail(f"function {name!r} is not implemented")
            fn = _EXPR_FUNCTIONS[name]
            return lambda h: fn(*(a(h) for a in args))
        nested = _nest(scope)
        if value not in nested:
            raise InterpreterError(f"{where}: expression {source!r} refers to {value!r}, which is not defined "
                                   "there.", hint=f"Defined names: {sorted(scope)}.")
        getter: Callable[[Any], Any] = lambda h: nested[value]  # noqa: E731
        while peek() in (".", "["):
            if take()[1] == ".":
                key = take()[1]
                getter = lambda h, g=getter, k=key: _member(g(h), k, source, where)  # noqa: E731
            else:
                index = additive()
                take("]")
                getter = lambda h, g=getter, i=index: _member(g(h), i(h), source, where)  # noqa: E731
        return getter

    result = additive()(None)
    if pos != len(tokens):
        raise fail(f"unexpected {tokens[pos][1]!r}")
    return result if isinstance(result, str) else json.dumps(result)


def _member(obj: Any, key: Any, source: str, where: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise InterpreterError(f"{where}: expression {source!r}: {key!r} is not defined there.")
    return obj[key]


def _substitute_all(value: Any, scope: Mapping[str, str], where: str) -> Any:
    if isinstance(value, str):
        return substitute(value, scope, where)
    if isinstance(value, list):
        return [_substitute_all(v, scope, where) for v in value]
    if isinstance(value, dict):
        return {k: _substitute_all(v, scope, where) for k, v in value.items()}
    return value


def _operand(token: str) -> str:
    token = token.strip()
    if len(token) >= 2 and token[0] == token[-1] and token[0] in "'\"":
        return token[1:-1]
    return token


def _equal(a: str, b: str) -> bool:
    try:
        return float(a) == float(b)
    except ValueError:
        return a == b


def evaluate_when(expression: str, where: str) -> bool:
    """Evaluate a substituted ``when``: ``true``/``false``, ``a == b`` and ``a != b`` joined by ``&&``/``||``.

    This is the part of govaluate a compiler emits; operands compare as numbers when both are numbers
    and as strings (quotes removed) otherwise.
    """
    rest = re.sub(r"==|!=|&&|\|\|", " ", expression)
    if re.search(r"[()<>!=~]", rest):
        raise UnsupportedConstructError(f"{where}: when {expression!r} uses an operator the interpreter "
                                        "does not implement (only ==, !=, &&, ||).")
    return any(all(_comparison(part, expression, where) for part in alt.split("&&"))
               for alt in expression.split("||"))


def _comparison(part: str, expression: str, where: str) -> bool:
    for op, want in (("!=", False), ("==", True)):
        if op in part:
            lhs, rhs = part.split(op, 1)
            return _equal(_operand(lhs), _operand(rhs)) is want
    literal = _operand(part).lower()
    if literal in ("true", "false"):
        return literal == "true"
    raise InterpreterError(f"{where}: cannot evaluate {part.strip()!r} in when {expression!r}.",
                           hint="A when is true, false, or comparisons with == / != joined by && / ||.")


_DEPENDS_TOKEN = re.compile(r"\s*(&&|\|\||!|\(|\)|[A-Za-z0-9_-]+(?:\.[A-Za-z]+)?)")
_RESULTS = {"Succeeded": {NodePhase.SUCCEEDED}, "Failed": {NodePhase.FAILED}, "Errored": {NodePhase.ERROR},
            "Skipped": {NodePhase.SKIPPED}, "Omitted": {NodePhase.OMITTED}}


def depends_tasks(expression: str) -> list[str]:
    """The task names a ``depends`` expression refers to."""
    names = [t.split(".")[0] for t in _tokens(expression) if t not in ("&&", "||", "!", "(", ")")]
    return list(dict.fromkeys(names))


def _tokens(expression: str) -> list[str]:
    tokens, pos = [], 0
    expression = expression.rstrip()
    while pos < len(expression):
        m = _DEPENDS_TOKEN.match(expression, pos)
        if not m:
            raise UnsupportedConstructError(f"depends {expression!r}: cannot parse at {expression[pos:]!r}.")
        tokens.append(m.group(1))
        pos = m.end()
    return tokens


def evaluate_depends(expression: str, result: Callable[[str, str | None], bool]) -> bool:
    """Evaluate a ``depends`` expression (``A && (B.Failed || !C.Succeeded)``) with ``result(task, suffix)``."""
    tokens = _tokens(expression)

    def or_expr(i: int) -> tuple[bool, int]:
        value, i = and_expr(i)
        while i < len(tokens) and tokens[i] == "||":
            rhs, i = and_expr(i + 1)
            value = value or rhs
        return value, i

    def and_expr(i: int) -> tuple[bool, int]:
        value, i = unary(i)
        while i < len(tokens) and tokens[i] == "&&":
            rhs, i = unary(i + 1)
            value = value and rhs
        return value, i

    def unary(i: int) -> tuple[bool, int]:
        if tokens[i] == "!":
            value, i = unary(i + 1)
            return not value, i
        if tokens[i] == "(":
            value, i = or_expr(i + 1)
            if i >= len(tokens) or tokens[i] != ")":
                raise InterpreterError(f"depends {expression!r}: unbalanced parentheses.")
            return value, i + 1
        name, _, suffix = tokens[i].partition(".")
        if suffix and suffix not in _RESULTS:
            raise UnsupportedConstructError(f"depends {expression!r}: result .{suffix} is not implemented.")
        return result(name, suffix or None), i + 1

    value, end = or_expr(0)
    if end != len(tokens):
        raise InterpreterError(f"depends {expression!r}: unexpected {tokens[end]!r}.")
    return value


def _item_label(item: Any) -> str:
    if isinstance(item, dict):
        return ",".join(f"{k}:{v}" for k, v in sorted(item.items()))
    return item if isinstance(item, str) else json.dumps(item)


def _item_scope(item: Any) -> dict[str, str]:
    scope = {"item": item if isinstance(item, str) else json.dumps(item)}
    if isinstance(item, dict):
        scope.update({f"item.{k}": v if isinstance(v, str) else json.dumps(v) for k, v in item.items()})
    return scope


def _aggregate(values: list[str]) -> str:
    """A loop task's output parameter: a JSON list of its children's values (JSON values kept as JSON)."""
    out: list[Any] = []
    for v in values:
        try:
            parsed = json.loads(v)
        except ValueError:
            parsed = v
        out.append(parsed if isinstance(parsed, (dict, list)) else v)
    return json.dumps(out)


def resolve_template_ref(workflow: Mapping[str, Any],
                         workflow_templates: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    """A Workflow with ``spec.workflowTemplateRef`` as Argo runs it: the referenced template's spec,
    with the Workflow's ``arguments`` overriding the template's parameters of the same name (an
    argument the template does not declare is an error). Any other Workflow is returned as it is."""
    spec = workflow.get("spec", {})
    if "workflowTemplateRef" not in spec:
        return workflow
    if workflow.get("kind") != "Workflow":
        raise InterpreterError(f"kind {workflow.get('kind')!r} has a workflowTemplateRef; only a Workflow may.")
    _check_keys(spec, REF_SPEC_KEYS, "spec (with workflowTemplateRef)", "spec")
    ref = spec["workflowTemplateRef"]
    _check_keys(ref, {"name"}, "spec.workflowTemplateRef")
    by_name = {t["metadata"]["name"]: t for t in workflow_templates}
    if ref["name"] not in by_name:
        raise InterpreterError(f"spec.workflowTemplateRef names {ref['name']!r}, which is not among the "
                               "WorkflowTemplates given.", hint=f"Given: {sorted(by_name)}.")
    template = by_name[ref["name"]]
    if template.get("kind") != "WorkflowTemplate":
        raise InterpreterError(f"{ref['name']!r} is a {template.get('kind')}, not a WorkflowTemplate.")
    _check_parameters(spec.get("arguments", {}), "spec.arguments")
    declared = [dict(p) for p in template["spec"].get("arguments", {}).get("parameters", [])]
    index = {p["name"]: p for p in declared}
    for p in spec.get("arguments", {}).get("parameters", []):
        if p["name"] not in index:
            raise InterpreterError(f"spec.arguments: {p['name']!r} is not a parameter of WorkflowTemplate "
                                   f"{ref['name']!r}.", hint=f"Declared: {sorted(index)}.")
        index[p["name"]]["value"] = p["value"]
    merged_spec = {**template["spec"]}
    if declared:
        merged_spec["arguments"] = {"parameters": declared}
    metadata = {**template.get("metadata", {}), **workflow.get("metadata", {})}
    return {"apiVersion": workflow.get("apiVersion"), "kind": "Workflow", "metadata": metadata, "spec": merged_spec}


def validate(workflow_template: Mapping[str, Any]) -> None:
    """Check every object of ``workflow_template`` before anything runs.

    Raises ``UnsupportedConstructError`` for a field the interpreter does not implement, even in a
    template no run reaches, and ``InterpreterError`` for a reference to a missing template or task.
    """
    _check_keys(workflow_template, WORKFLOW_KEYS, "The workflow")
    if workflow_template.get("kind") not in ("WorkflowTemplate", "Workflow"):
        raise UnsupportedConstructError(f"kind {workflow_template.get('kind')!r} is not Workflow or "
                                        "WorkflowTemplate.")
    spec = workflow_template["spec"]
    _check_keys(spec, SPEC_KEYS, "spec", "spec")
    _check_parameters(spec.get("arguments", {}), "spec.arguments")
    templates = {t["name"]: t for t in spec["templates"]}
    if spec["entrypoint"] not in templates:
        raise InterpreterError(f"The entrypoint {spec['entrypoint']!r} is not a template.",
                               hint=f"Templates: {sorted(templates)}.")
    for template in templates.values():
        _check_template(template, templates)


def _check_parameters(declared: Mapping[str, Any], where: str) -> None:
    _check_keys(declared, {"parameters"}, where)
    for p in declared.get("parameters", []):
        _check_keys(p, {"name", "value", "default", "description"}, f"{where} parameter {p.get('name')!r}")


def _check_template(template: Mapping[str, Any], templates: Mapping[str, Any]) -> None:
    where = f"Template {template['name']!r}"
    _check_keys(template, TEMPLATE_KEYS, where, "template")
    if ("dag" in template) == ("container" in template):
        raise UnsupportedConstructError(f"{where} must have exactly one of dag or container.",
                                        hint="Other template kinds (script, steps, resource, suspend) "
                                             "are not implemented.")
    _check_parameters(template.get("inputs", {}), f"{where} inputs")
    outputs = template.get("outputs", {})
    _check_keys(outputs, {"parameters"}, f"{where} outputs")
    for p in outputs.get("parameters", []):
        _check_keys(p, {"name", "valueFrom"}, f"{where} output {p.get('name')!r}")
        _check_keys(p["valueFrom"], {"path", "default"} if "container" in template else {"parameter"},
                    f"{where} output {p['name']!r} valueFrom")
    if "container" in template:
        container = template["container"]
        _check_keys(container, CONTAINER_KEYS, f"{where} container", "container")
        if not container.get("command"):
            raise UnsupportedConstructError(f"{where}: a container without command is not implemented "
                                            "(the image's entrypoint is unknown here).")
        for e in container.get("env", []):
            _check_keys(e, {"name", "value"}, f"{where} env {e.get('name')!r}")
        strategy = template.get("retryStrategy", {})
        _check_keys(strategy, RETRY_KEYS, f"{where} retryStrategy", "retryStrategy")
        if strategy.get("retryPolicy", RETRY_POLICIES[0]) not in RETRY_POLICIES:
            raise UnsupportedConstructError(f"{where} retryPolicy {strategy['retryPolicy']!r} is not "
                                            "implemented.", hint=f"Use one of {list(RETRY_POLICIES)}.")
        return
    if "retryStrategy" in template or "activeDeadlineSeconds" in template:
        raise UnsupportedConstructError(f"{where}: retryStrategy and activeDeadlineSeconds are implemented "
                                        "on container templates only.")
    _check_keys(template["dag"], {"tasks"}, f"{where} dag")
    tasks = {t["name"]: t for t in template["dag"]["tasks"]}
    for task in tasks.values():
        _check_task(task, tasks, templates, f"{where} task {task['name']!r}")


def _check_task(task: Mapping[str, Any], tasks: Mapping[str, Any], templates: Mapping[str, Any],
                where: str) -> None:
    _check_keys(task, TASK_KEYS, where)
    _check_keys(task.get("continueOn", {}), {"failed"}, f"{where} continueOn")
    arguments = task.get("arguments", {})
    _check_keys(arguments, {"parameters"}, f"{where} arguments")
    for p in arguments.get("parameters", []):
        _check_keys(p, {"name", "value"}, f"{where} argument {p.get('name')!r}")
    if task["template"] not in templates:
        raise InterpreterError(f"{where} uses template {task['template']!r}, which is not defined.",
                               hint=f"Templates: {sorted(templates)}.")
    for both in (("depends", "dependencies"), ("withParam", "withItems")):
        if set(both) <= set(task):
            raise InterpreterError(f"{where} has both {both[0]} and {both[1]}.", hint="Argo rejects that.")
    if "depends" in task:
        evaluate_depends(task["depends"], lambda name, suffix: True)  # parses it: raises on what it lacks
    for d in task_dependencies(task):
        if d not in tasks:
            raise InterpreterError(f"{where} depends on {d!r}, which is not a task of the same DAG.")


def _ancestors(name: str, deps: Mapping[str, list[str]]) -> list[str]:
    seen: dict[str, None] = {}
    stack = list(deps[name])
    while stack:
        d = stack.pop()
        if d not in seen:
            seen[d] = None
            stack.extend(deps[d])
    return list(seen)


def task_dependencies(task: Mapping[str, Any]) -> list[str]:
    """The names of the tasks ``task`` waits for, from ``depends`` or ``dependencies``."""
    if "depends" in task:
        return depends_tasks(task["depends"])
    return list(task.get("dependencies", []))


class Interpreter:
    """Runs a WorkflowTemplate as a Workflow, one local process per container, one at a time.

    Parameters
    ----------
    base_env : Mapping[str, str]
        The environment every container process starts from; a container's ``env`` is merged on top.
    work_dir : Path
        Where per-attempt directories are made (each replaces ``path_prefix``).
    path_prefix : str
        A container path (``/tmp/out``) rewritten to the attempt's own directory in command, args,
        env values, workingDir and output parameter paths.
    cwd : Path, optional
        Working directory of processes whose container has no ``workingDir``.

    Examples
    --------
    >>> run = Interpreter(base_env=os.environ, work_dir=tmp_path).run(template, {"alpha": "0.5"})
    >>> run.phase, run.ran
    """

    def __init__(self, *, base_env: Mapping[str, str], work_dir: Path, path_prefix: str = "/tmp/out",
                 cwd: Path | None = None, gate: Callable[[], None] | None = None):
        self.base_env = dict(base_env)
        # Called before every pod starts; it may block (a suspended workflow starts no new pod).
        self.gate = gate
        self._stopped: str | None = None
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self.work_dir = Path(work_dir)
        self.path_prefix = path_prefix.rstrip("/")
        self.cwd = cwd
        self.ran: list[str] = []
        self.nodes: dict[str, Node] = {}
        self.templates: dict[str, dict[str, Any]] = {}
        self.globals: dict[str, str] = {}
        self.deadline_at: float | None = None

    def run(self, workflow_template: Mapping[str, Any], arguments: Mapping[str, str] | None = None,
            *, name: str | None = None, workflow_templates: Sequence[Mapping[str, Any]] = ()) -> WorkflowRun:
        """Submit ``workflow_template`` with ``arguments`` (workflow parameters) and run it to the end.

        A Workflow with ``spec.workflowTemplateRef`` runs the referenced template, found among
        ``workflow_templates`` (see ``resolve_template_ref``); its name, unless ``name`` is given, is
        its ``generateName`` followed by five random characters, as Argo names it.
        """
        workflow_template = resolve_template_ref(workflow_template, workflow_templates)
        validate(workflow_template)
        spec = workflow_template["spec"]
        self.templates = {t["name"]: t for t in spec["templates"]}
        metadata = workflow_template.get("metadata", {})
        if name is None and "generateName" in metadata and workflow_template.get("kind") == "Workflow":
            name = metadata["generateName"] + "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
        name = name or f"{metadata.get('name', 'workflow')}-run"
        params = self._parameters(spec.get("arguments", {}), dict(arguments or {}), "spec.arguments")
        self.globals = {"workflow.name": name, **{f"workflow.parameters.{k}": v for k, v in params.items()}}
        self.ran, self.nodes = [], {}
        limit = spec.get("activeDeadlineSeconds")
        self.deadline_at = None if limit is None else time.monotonic() + float(substitute(str(limit), self.globals,
                                                                                         "spec.activeDeadlineSeconds"))
        root = self._run_template(spec["entrypoint"], {}, name, name)
        return WorkflowRun(name, root.phase, root, self.ran, self.nodes)

    # -- parameters -----------------------------------------------------------------------------------

    @staticmethod
    def _parameters(declared: Mapping[str, Any], given: dict[str, str], where: str) -> dict[str, str]:
        out: dict[str, str] = {}
        for p in declared.get("parameters", []):
            if p["name"] in given:
                out[p["name"]] = str(given.pop(p["name"]))
            elif "value" in p or "default" in p:
                out[p["name"]] = str(p.get("value", p.get("default")))
            else:
                raise InterpreterError(f"{where}: parameter {p['name']!r} has no value.",
                                       hint="Pass it in the arguments, or give it a value or default.")
        if given:
            raise InterpreterError(f"{where}: {sorted(given)} are not declared parameters.",
                                   hint=f"Declared: {[p['name'] for p in declared.get('parameters', [])]}.")
        return out

    # -- templates ------------------------------------------------------------------------------------

    def _run_template(self, template_name: str, arguments: dict[str, str], node_name: str,
                      display: str) -> Node:
        template = self.templates[template_name]
        inputs = self._parameters(template.get("inputs", {}), dict(arguments), f"Template {template_name!r} inputs")
        scope = {**self.globals, **{f"inputs.parameters.{k}": v for k, v in inputs.items()}}
        if "dag" in template:
            node = self._run_dag(template, scope, node_name, display)
        else:
            node = self._run_container(template, scope, node_name, display)
        node.inputs = inputs
        return node

    def stop(self, message: str = "Stopped with strategy 'Terminate'") -> None:
        """Stop the run from another thread, as Argo's ``shutdown: Terminate`` does: the running pod's
        process group is killed (its node fails with ``message``) and no other pod starts."""
        with self._lock:
            self._stopped = message
            proc = self._proc
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)

    # -- containers -----------------------------------------------------------------------------------

    def _run_container(self, template: dict[str, Any], scope: dict[str, str], node_name: str,
                       display: str) -> Node:
        where = f"Template {template['name']!r}"
        outputs = template.get("outputs", {}).get("parameters", [])
        strategy = template.get("retryStrategy")
        if strategy is None:
            return self._run_attempt(template, scope, outputs, node_name, display, retries=None)
        limit = int(substitute(str(strategy.get("limit", 0)), scope, f"{where} retryStrategy.limit"))
        parent = Node(node_name, display, NodeType.RETRY, template["name"])
        self.nodes[node_name] = parent
        for attempt in range(limit + 1):
            child = self._run_attempt(template, scope, outputs, f"{node_name}({attempt})",
                                      f"{display}({attempt})", retries=attempt)
            parent.children.append(child)
            if child.phase is NodePhase.SUCCEEDED or self._stopped is not None:
                break
        parent.phase, parent.message, parent.outputs = child.phase, child.message, child.outputs
        parent.exit_code = child.exit_code
        return parent

    def _run_attempt(self, template: dict[str, Any], scope: dict[str, str], outputs: list[dict[str, Any]],
                     node_name: str, display: str, retries: int | None) -> Node:
        where = f"Template {template['name']!r}"
        if retries is not None:
            scope = {**scope, "retries": str(retries)}
        attempt_dir = Path(tempfile.mkdtemp(prefix="attempt-", dir=self.work_dir))
        container = _substitute_all(template["container"], scope, f"{where} container")
        container = self._rewrite_paths(container, attempt_dir)
        env = {**self.base_env, **{e["name"]: e.get("value", "") for e in container.get("env", [])}}
        argv = [*container.get("command", []), *container.get("args", [])]
        deadline = template.get("activeDeadlineSeconds")
        deadline = float(substitute(str(deadline), scope, where)) if deadline is not None else None
        node = Node(node_name, display, NodeType.POD, template["name"], retries=retries)
        self.nodes[node_name] = node
        timeout, message = deadline, f"Pod was active on the node longer than the specified deadline ({deadline}s)"
        if self.deadline_at is not None:
            left = self.deadline_at - time.monotonic()
            if left <= 0:
                node.phase, node.message = NodePhase.FAILED, "Step exceeded its deadline (the workflow's)"
                return node
            if timeout is None or left < timeout:
                timeout, message = left, "Step exceeded its deadline (the workflow's activeDeadlineSeconds)"
        if self.gate is not None:
            self.gate()
        with self._lock:
            if self._stopped is not None:
                node.phase, node.message = NodePhase.FAILED, self._stopped
                return node
            self.ran.append(node_name)
            proc = self._proc = subprocess.Popen(argv, env=env, cwd=container.get("workingDir") or self.cwd,
                                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                                 start_new_session=True)
        try:
            node.stdout, node.stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            node.stdout, node.stderr = proc.communicate()
            node.phase, node.exit_code = NodePhase.FAILED, proc.returncode
            node.message = message
            return node
        finally:
            with self._lock:
                self._proc = None
        node.exit_code = proc.returncode
        if self._stopped is not None:
            node.phase, node.message = NodePhase.FAILED, self._stopped
            return node
        if proc.returncode != 0:
            node.phase, node.message = NodePhase.FAILED, f"Error (exit code {proc.returncode})"
            return node
        for p in outputs:
            path = Path(self._rewrite_paths(substitute(p["valueFrom"]["path"], scope, where), attempt_dir))
            if path.is_file():
                # Argo's executor trims one trailing newline from a parameter read from a file.
                text = path.read_text()
                node.outputs[p["name"]] = text[:-1] if text.endswith("\n") else text
            elif "default" in p["valueFrom"]:
                node.outputs[p["name"]] = str(p["valueFrom"]["default"])
            else:
                node.phase = NodePhase.ERROR
                node.message = f"output parameter {p['name']!r}: no file at {p['valueFrom']['path']}"
        return node

    def _rewrite_paths(self, value: Any, attempt_dir: Path) -> Any:
        if isinstance(value, str):
            return value.replace(self.path_prefix, str(attempt_dir))
        if isinstance(value, list):
            return [self._rewrite_paths(v, attempt_dir) for v in value]
        if isinstance(value, dict):
            return {k: self._rewrite_paths(v, attempt_dir) for k, v in value.items()}
        return value

    # -- DAGs -----------------------------------------------------------------------------------------

    def _run_dag(self, template: dict[str, Any], scope: dict[str, str], node_name: str, display: str) -> Node:
        where = f"Template {template['name']!r}"
        outputs = template.get("outputs", {}).get("parameters", [])
        node = Node(node_name, display, NodeType.DAG, template["name"])
        self.nodes[node_name] = node
        tasks = {t["name"]: t for t in template["dag"]["tasks"]}
        deps = {name: task_dependencies(t) for name, t in tasks.items()}
        ancestors = {name: _ancestors(name, deps) for name in tasks}
        done: dict[str, Node] = {}
        failed = False
        while not failed:
            ready = [n for n in tasks if n not in done and all(d in done for d in deps[n])]
            if not ready:
                break
            task = tasks[ready[0]]
            # Argo resolves {{tasks.X...}} only for X among the task's ancestors, not any task done by now.
            visible = {n: done[n] for n in ancestors[task["name"]]}
            child = self._run_task(task, tasks, visible, scope, node_name)
            done[task["name"]] = child
            node.children.append(child)
            failed = child.phase in (NodePhase.FAILED, NodePhase.ERROR) and not self._continues(task)
        if len(done) < len(tasks) and not failed:
            raise InterpreterError(f"{where}: tasks {sorted(set(tasks) - set(done))} never became ready "
                                   "(a dependency cycle).")
        if failed:
            node.phase = NodePhase.FAILED
            node.message = "child failed"
            return node
        task_scope = {**scope, **self._task_outputs(done)}
        for p in outputs:
            node.outputs[p["name"]] = substitute(p["valueFrom"]["parameter"], task_scope,
                                                 f"{where} output {p['name']!r}")
        return node

    @staticmethod
    def _continues(task: dict[str, Any]) -> bool:
        return bool(task.get("continueOn", {}).get("failed"))

    def _depends_expression(self, task: dict[str, Any]) -> str:
        if "depends" in task:
            return str(task["depends"])
        return " && ".join(task.get("dependencies", [])) or ""

    def _task_outputs(self, done: dict[str, Node]) -> dict[str, str]:
        scope: dict[str, str] = {}
        for name, n in done.items():
            scope[f"tasks.{name}.status"] = n.phase.value
            for k, v in n.outputs.items():
                scope[f"tasks.{name}.outputs.parameters.{k}"] = v
        return scope

    def _run_task(self, task: dict[str, Any], tasks: dict[str, Any], done: dict[str, Node],
                  scope: dict[str, str], parent: str) -> Node:
        name = task["name"]
        node_name = f"{parent}.{name}"
        expression = self._depends_expression(task)

        def result(dep: str, suffix: str | None) -> bool:
            phase = done[dep].phase
            if suffix is not None:
                return phase in _RESULTS[suffix]
            return phase in PHASES_DONE_OK or (phase is NodePhase.FAILED and self._continues(tasks[dep]))

        if expression and not evaluate_depends(expression, result):
            return self._record(Node(node_name, name, NodeType.SKIPPED, task["template"], NodePhase.OMITTED,
                                     "omitted: depends condition not met"))
        task_scope = {**scope, **self._task_outputs(done)}
        where = f"Task {name!r}"
        if "withParam" in task or "withItems" in task:
            return self._run_loop(task, task_scope, node_name, where)
        return self._run_one(task, task_scope, node_name, name, where)

    def _record(self, node: Node) -> Node:
        self.nodes[node.name] = node
        return node

    def _run_one(self, task: dict[str, Any], scope: dict[str, str], node_name: str, display: str,
                 where: str) -> Node:
        if "when" in task and not evaluate_when(substitute(task["when"], scope, f"{where} when"), where):
            return self._record(Node(node_name, display, NodeType.SKIPPED, task["template"], NodePhase.SKIPPED,
                                     f"when '{substitute(task['when'], scope, where)}' evaluated false"))
        arguments = task.get("arguments", {})
        values: dict[str, str] = {}
        for p in arguments.get("parameters", []):
            values[p["name"]] = substitute(str(p["value"]), scope, f"{where} argument {p['name']!r}")
        return self._run_template(task["template"], values, node_name, display)

    def _run_loop(self, task: dict[str, Any], scope: dict[str, str], node_name: str, where: str) -> Node:
        group = self._record(Node(node_name, task["name"], NodeType.TASK_GROUP, task["template"]))
        if "withItems" in task:
            items = task["withItems"]
        else:
            raw = substitute(task["withParam"], scope, f"{where} withParam")
            try:
                items = json.loads(raw)
            except ValueError:
                items = None
            if not isinstance(items, list):
                group.phase = NodePhase.ERROR
                group.message = f"withParam value could not be parsed as a JSON list: {raw}"
                return group
        if not items:
            group.phase, group.message = NodePhase.SKIPPED, "Skipped, empty params"
            return group
        for i, item in enumerate(items):
            label = f"{task['name']}({i}:{_item_label(item)})"
            child = self._run_one(task, {**scope, **_item_scope(item)}, f"{node_name}({i}:{_item_label(item)})",
                                  label, f"{where} item {i}")
            group.children.append(child)
            if child.phase in (NodePhase.FAILED, NodePhase.ERROR):
                group.phase, group.message = NodePhase.FAILED, f"child {child.name} failed"
        names = list(dict.fromkeys(k for c in group.children for k in c.outputs))
        group.outputs = {k: _aggregate([c.outputs[k] for c in group.children if k in c.outputs]) for k in names}
        return group
