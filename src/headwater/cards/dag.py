"""The flow's graph drawn as inline SVG for cards (internal), from ``FlowGraph.to_info()``.

A layered top-to-bottom layout: each step sits one layer below its deepest
parent; edges that go back up (a switch looping to an earlier step) are drawn
as arcs on the right.
"""

from __future__ import annotations

from typing import Any

from ..flow.graph import NodeKind
from .html import esc

_NODE_H = 46
_LAYER_GAP = 84
_NODE_GAP = 28
_MARGIN = 24
# Stored graphs name each step's kind by its NodeKind value.
_KIND_LABEL = {
    NodeKind.START.value: "", NodeKind.END.value: "", NodeKind.LINEAR.value: "", NodeKind.JOIN.value: "join",
    NodeKind.SPLIT.value: "split", NodeKind.FOREACH.value: "foreach", NodeKind.SWITCH.value: "switch",
    NodeKind.PARALLEL.value: "parallel",
}


def _width(name: str, sub: str) -> int:
    return max(110, 8 * max(len(name), len(sub)) + 36)


def _layers(info: dict[str, Any]) -> tuple[dict[str, int], list[list[str]]]:
    steps = info["steps"]
    order = [n for n in info.get("order") or steps if n in steps]
    order += [n for n in steps if n not in order]
    pos = {n: i for i, n in enumerate(order)}
    layer: dict[str, int] = {}
    for n in order:
        parents = [p for p in steps[n].get("in") or () if p in pos and pos[p] < pos[n]]
        layer[n] = max((layer[p] + 1 for p in parents), default=0)
    rows: list[list[str]] = [[] for _ in range(max(layer.values(), default=0) + 1)]
    for n in order:
        rows[layer[n]].append(n)
    # One barycentre pass: children sit under the average position of their parents.
    index = {n: i for row in rows for i, n in enumerate(row)}
    for row in rows[1:]:
        def centre(n: str) -> float:
            ps = [index[p] for p in steps[n].get("in") or () if p in layer and layer[p] < layer[n]]
            return sum(ps) / len(ps) if ps else index[n]
        row.sort(key=lambda n: (centre(n), pos[n]))
        for i, n in enumerate(row):
            index[n] = i
    return layer, rows


def dag_svg(info: dict[str, Any], highlight: str | None = None) -> str:
    """An ``<svg>`` drawing of the graph, with the ``highlight`` step filled in.

    Parameters
    ----------
    info : dict
        ``FlowGraph.to_info()`` (also stored with every run as ``_graph_info``).
    highlight : str, optional
        The step to emphasise (the card's own step).
    """
    steps = info.get("steps") or {}
    if not steps:
        return ""
    layer, rows = _layers(info)
    sizes = {n: _width(n, _KIND_LABEL.get(steps[n].get("type", ""), "")) for n in steps}
    row_w = [sum(sizes[n] for n in row) + _NODE_GAP * (len(row) - 1) for row in rows]
    has_back = any(layer[c] <= layer[n] for n in steps for c in steps[n].get("next") or () if c in layer)
    width = max(row_w) + 2 * _MARGIN + (60 if has_back else 0)
    height = len(rows) * _NODE_H + (len(rows) - 1) * _LAYER_GAP + 2 * _MARGIN
    box: dict[str, tuple[float, float, float]] = {}  # name -> (x, y, w)
    inner = max(row_w)
    for r, row in enumerate(rows):
        x = _MARGIN + (inner - row_w[r]) / 2
        y = _MARGIN + r * (_NODE_H + _LAYER_GAP)
        for n in row:
            box[n] = (x, y, sizes[n])
            x += sizes[n] + _NODE_GAP

    edges: list[str] = []
    labels: list[str] = []
    for n, s in steps.items():
        cases = {v: k for k, v in (s.get("switch_cases") or {}).items()}
        for c in s.get("next") or ():
            if c not in box:
                continue
            x1, y1, w1 = box[n]
            x2, y2, w2 = box[c]
            label = ""
            if s.get("type") == NodeKind.FOREACH.value and s.get("foreach_param"):
                label = f"foreach {s['foreach_param']}"
            elif c in cases:
                label = str(cases[c])
            if layer[c] > layer[n]:
                sx, sy, ex, ey = x1 + w1 / 2, y1 + _NODE_H, x2 + w2 / 2, y2 - 3
                my = (sy + ey) / 2
                d = f"M{sx:.1f},{sy:.1f} C{sx:.1f},{my:.1f} {ex:.1f},{my:.1f} {ex:.1f},{ey:.1f}"
                lx, ly = (sx + ex) / 2, my
            else:  # back edge: an arc on the right
                sx, sy = x1 + w1, y1 + _NODE_H / 2
                ex, ey = x2 + w2 + 3, y2 + _NODE_H / 2
                bulge = max(sx, ex) + 50
                d = f"M{sx:.1f},{sy:.1f} C{bulge:.1f},{sy:.1f} {bulge:.1f},{ey:.1f} {ex:.1f},{ey:.1f}"
                lx, ly = bulge - 10, (sy + ey) / 2
            edges.append(f'<path class="hw-edge" d="{d}" fill="none" stroke="#94a3b8" stroke-width="1.6" '
                         f'marker-end="url(#hw-arrow)"/>')
            if label:
                labels.append(f'<text x="{lx + 6:.1f}" y="{ly:.1f}" font-size="11" fill="#64748b">{esc(label)}</text>')

    nodes: list[str] = []
    for n, (x, y, w) in box.items():
        s = steps[n]
        hot = n == highlight
        fill, stroke, fg, sub_fg = ("#2563eb", "#1d4ed8", "#ffffff", "#dbeafe") if hot else (
            "#ffffff", "#cbd5e1", "#1d2430", "#64748b")
        sub = _KIND_LABEL.get(s.get("type", ""), "")
        doc = (s.get("doc") or "").strip()
        title = f"<title>{esc(n + (': ' + doc if doc else ''))}</title>"
        ty = y + (_NODE_H / 2 - 2 if sub else _NODE_H / 2 + 5)
        sub_text = (f'<text x="{x + w / 2:.1f}" y="{y + _NODE_H / 2 + 13:.1f}" text-anchor="middle" '
                    f'font-size="11" fill="{sub_fg}">{esc(sub)}</text>') if sub else ""
        nodes.append(
            f'<g class="hw-node{" hw-current" if hot else ""}" data-step="{esc(n)}">{title}'
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{_NODE_H}" rx="9" fill="{fill}" '
            f'stroke="{stroke}" stroke-width="1.5"/>'
            f'<text x="{x + w / 2:.1f}" y="{ty:.1f}" text-anchor="middle" font-size="13.5" font-weight="600" '
            f'fill="{fg}" font-family="ui-monospace,Menlo,Consolas,monospace">{esc(n)}</text>{sub_text}</g>')
    return (
        f'<svg class="hw-dag-svg" xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" aria-label="flow graph" '
        'font-family="system-ui,-apple-system,Segoe UI,Roboto,sans-serif">'
        '<defs><marker id="hw-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#94a3b8"/></marker></defs>'
        + "".join(edges) + "".join(nodes) + "".join(labels) + "</svg>"
    )
