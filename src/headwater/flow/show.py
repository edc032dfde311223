"""Text renderings of a flow's graph: ``python flow.py show`` and Graphviz dot (authoring layer, internal)."""

from __future__ import annotations

import enum
from collections.abc import Iterator

from .graph import FlowGraph, NodeKind

_INDENT = "    "


class Stream(enum.Enum):
    """Where a line of ``show`` goes: the steps on stdout, the flow's docstring and spacing on stderr."""

    OUT = "stdout"
    ERR = "stderr"


def _indented(text: str) -> str:
    return "\n".join(_INDENT + line for line in text.splitlines())


def show_lines(graph: FlowGraph, flow_cls: type) -> Iterator[tuple[Stream, str]]:
    """The lines of ``python flow.py show`` with their streams, laid out as Metaflow's.

    stderr gets a blank line and the flow's docstring, and a blank line before each
    step and after the last; stdout gets, per step in graph order, its decorators
    (``@retry``, then user step decorators), ``Step <name>``, its docstring indented
    (``?`` when it has none) and, unless it is the end step, ``=> <targets>``. On a
    terminal the two streams interleave into one readable listing; piped, stdout is
    the compact step list scripts read.

    Examples
    --------
    >>> for stream, line in show_lines(build_graph(HelloFlow), HelloFlow):  # doctest: +SKIP
    ...     print(stream.name, line)
    ERR
    ERR A flow that says hello.
    ERR
    OUT @retry
    OUT Step start
    OUT     The first step.
    OUT     => end
    ERR
    OUT Step end
    OUT     ?
    ERR
    """
    yield Stream.ERR, ""
    yield Stream.ERR, graph.doc.strip()
    for node in graph:
        yield Stream.ERR, ""
        func = getattr(flow_cls, node.name, None)
        # Read from the step function, not the graph: --with and mutators attach decorators after it was built.
        for deco in getattr(func, "decorators", node.decorators):
            yield Stream.OUT, f"@{getattr(deco, 'name', None) or type(deco).__name__}"
        for wrapper in getattr(func, "wrappers", ()):
            yield Stream.OUT, f"@{type(wrapper).decorator_name}"
        yield Stream.OUT, f"Step {node.name}"
        yield Stream.OUT, _indented(node.doc.strip() or "?")
        if node.kind is not NodeKind.END:
            yield Stream.OUT, f"{_INDENT}=> {', '.join(node.out_funcs)}"
    yield Stream.ERR, ""


def format_dot(graph: FlowGraph) -> str:
    """The graph in Graphviz ``dot`` syntax, line for line as Metaflow's ``output-dot`` prints it.

    Steps are listed by name, each as a record labelled with its name and type
    (a switch is a green hexagon naming its condition); edges follow in the same
    order, switch edges labelled with their case.
    """
    nodes, edges = [], []
    for node in sorted(graph, key=lambda n: n.name):
        if node.kind is NodeKind.SWITCH:
            condition = f"switch: {node.condition}" if node.condition else "switch"
            nodes.append(f'"{node.name}" [ label = <<b>{node.name}</b><br/><font point-size="9">{condition}</font>> '
                         '  fontname = "Helvetica"   shape = "hexagon"   style = "filled" fillcolor = "lightgreen" ];')
            edges.extend(f'{node.name} -> {target} [label="{key}" color="blue" fontcolor="blue"];'
                         for key, target in node.switch_cases)
            continue
        kind = "join" if node.num_args > 1 else node.type
        nodes.append(f'"{node.name}"[ label = <<b>{node.name}</b> | <font point-size="10">{kind}</font>> '
                     '  fontname = "Helvetica"   shape = "record" ];')
        edges.extend(f"{node.name} -> {target};" for target in node.out_funcs)
    return f"digraph {graph.name} {{\n" + "\n".join(nodes) + "\n" + "\n".join(edges) + "\n}"
