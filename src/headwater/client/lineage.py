"""Which tasks are a task's parents and children, derived as Metaflow's client derives them (reading layer).

Metaflow does not follow the recorded inputs: it takes every step next to the task's step
in the graph (``_graph_info``) and keeps those of their tasks whose
``foreach-execution-path`` matches a pattern built from the task's own path. The
consequences users see are kept: in a switch self-loop every task of the loop step is a
parent and a child of every other (and a loop step that ran once is its own parent and
child), and a switch names the tasks of each case that ran. These functions are pure:
``Task`` supplies the graph and the tasks' paths.
"""

from __future__ import annotations

import re
from typing import Any

from ..store.taskmeta import PARAMETERS_STEP, PARAMETERS_TASK_ID

# A run's graph, by (store root, flow, run id): written once with the run, so never stale.
_GRAPH_INFOS: dict[tuple[str, str, str], dict[str, Any] | None] = {}

#: The pattern that matches every task (Metaflow does not read the tasks' metadata then).
ANY = ".*"
# Stored graphs (``_graph_info``) name each step's kind by its Metaflow type string; the client
# reads them as data and never imports the flow layer's NodeKind.
_FANOUT = ("split-foreach", "split-parallel")
_JOIN = "join"


def run_graph_info(source: Any, flow: str, run_id: str) -> dict[str, Any] | None:
    """The graph stored with a run (``_parameters``' ``_graph_info``), read once per run;
    ``None`` for a run stored without a usable one."""
    key = (source.root, flow, run_id)
    if key not in _GRAPH_INFOS:
        rec = source.attempt(flow, run_id, PARAMETERS_STEP, PARAMETERS_TASK_ID, 0) or {}
        ref = (rec.get("artifacts") or {}).get("_graph_info")
        info = source.load(ref) if ref is not None else None
        if not (isinstance(info, dict) and isinstance(info.get("steps"), dict)):
            info = None
        if len(_GRAPH_INFOS) >= 64:
            _GRAPH_INFOS.pop(next(iter(_GRAPH_INFOS)))
        _GRAPH_INFOS[key] = info
    return _GRAPH_INFOS[key]


def previous_steps(graph_info: dict[str, Any], step: str) -> list[str]:
    """The steps whose ``next`` names ``step``, in the graph's order."""
    return [name for name, node in graph_info["steps"].items() if step in node["next"]]


def parent_query(graph_info: dict[str, Any], step: str, path: str | None) -> tuple[list[str], str]:
    """``(steps, pattern)``: a task's parents are the tasks of ``steps`` whose execution path
    fully matches ``pattern``. ``path`` is the task's ``foreach-execution-path`` (``None``
    outside a foreach)."""
    steps = previous_steps(graph_info, step)
    if len(steps) != 1 or not path:  # a static join, the start step, or outside any foreach
        return steps, path if len(steps) > 1 and path else ANY
    depth = len(path.split(","))
    if graph_info["steps"][step]["type"] == _JOIN:  # a foreach join: its parents are one level deeper
        return steps, f"{path},.*"
    parent_fans_out = graph_info["steps"][steps[0]]["type"] in _FANOUT
    if parent_fans_out and depth == 1:
        return steps, ANY
    return steps, ",".join(path.split(",")[:depth - 1 if parent_fans_out else depth])


def child_query(graph_info: dict[str, Any], step: str, path: str | None) -> tuple[list[str], str]:
    """``(steps, pattern)``: a task's children are the tasks of ``steps`` whose execution path
    fully matches ``pattern`` (see :func:`parent_query`)."""
    node = graph_info["steps"][step]
    steps = list(node["next"])
    if len(steps) != 1 or not path:  # a static split or switch, the end step, or outside any foreach
        return steps, path if len(steps) > 1 and path else ANY
    if node["type"] in _FANOUT:  # a foreach split: its children are one level deeper
        return steps, f"{path},.*"
    depth = len(path.split(","))
    child_is_foreach_join = (graph_info["steps"][steps[0]]["type"] == _JOIN
                             and len(previous_steps(graph_info, steps[0])) == 1)
    if child_is_foreach_join and depth == 1:
        return steps, ANY
    return steps, ",".join(path.split(",")[:depth - 1 if child_is_foreach_join else depth])


def matches(pattern: str, path: str | None) -> bool:
    """Whether a task whose execution path is ``path`` matches ``pattern``."""
    return pattern == ANY or re.fullmatch(pattern, path or "") is not None
