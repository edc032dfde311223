"""``NodeKind``: what a step of a flow's graph does after it runs (authoring layer)."""

from __future__ import annotations

import enum


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
