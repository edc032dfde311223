"""Text renderings of a flow's graph: ``python flow.py show`` and Graphviz dot (authoring layer, internal)."""

from __future__ import annotations

import inspect
import textwrap

from .graph import FlowGraph, Node, NodeKind


def transition_text(node: Node) -> str:
    """Where a step goes, in words: ``=> a, b``, ``foreach items => body``, ``switch on x: k -> a``."""
    if node.kind is NodeKind.SWITCH:
        cases = ", ".join(f"{key} -> {target}" for key, target in node.switch_cases)
        return f"switch on {node.condition or '?'}: {cases}"
    if not node.out_funcs:
        return ""
    if node.kind is NodeKind.FOREACH:
        return f"foreach {node.foreach_param} => {', '.join(node.out_funcs)}"
    return "=> " + ", ".join(node.out_funcs)


def format_show(graph: FlowGraph, flow_cls: type) -> str:
    """The flow's docstring, then ``Step <name>`` with its docstring and transition, in graph order.

    Examples
    --------
    >>> print(format_show(build_graph(HelloFlow), HelloFlow))  # doctest: +SKIP
    A flow that says hello.
    <BLANKLINE>
    Step start
        The first step.
        => end
    <BLANKLINE>
    Step end
    """
    doc = flow_cls.__dict__.get("__doc__")
    parts: list[str] = []
    if isinstance(doc, str) and doc.strip():
        parts.append(inspect.cleandoc(doc) + "\n")
    for node in graph:
        lines = [f"Step {node.name}"]
        if node.doc:
            lines.append(textwrap.indent(node.doc, "    "))
        transition = transition_text(node)
        if transition:
            lines.append("    " + transition)
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)


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
