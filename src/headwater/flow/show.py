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


def _dot_id(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def format_dot(graph: FlowGraph) -> str:
    """The graph in Graphviz ``dot`` syntax (``FlowGraph.output_dot``)."""
    out = [f"digraph {_dot_id(graph.name)} {{", "  rankdir=TB;", "  node [shape=box];"]
    for node in graph:
        shape = "ellipse" if node.name in (graph.start, graph.end) else "box"
        label = _dot_id(node.name + "\n(" + node.type + ")")
        out.append(f"  {_dot_id(node.name)} [label={label}, shape={shape}];")
    for node in graph:
        src = _dot_id(node.name)
        if node.kind is NodeKind.SWITCH:
            out.extend(f"  {src} -> {_dot_id(target)} [label={_dot_id(key)}];" for key, target in node.switch_cases)
        elif node.kind is NodeKind.FOREACH:
            label = _dot_id(f"foreach {node.foreach_param}")
            out.extend(f"  {src} -> {_dot_id(t)} [label={label}, style=bold];" for t in node.out_funcs)
        else:
            out.extend(f"  {src} -> {_dot_id(t)};" for t in node.out_funcs)
    out.append("}")
    return "\n".join(out) + "\n"
