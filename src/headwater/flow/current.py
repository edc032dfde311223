"""``current``: what the running task knows about itself (flow, run, step, task, ...).

Outside a running task ``current.is_running_flow`` is False and the other
attributes raise a clear error, as in Metaflow.
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple


class Parallel(NamedTuple):
    """``current.parallel``: where this task sits in a ``@parallel`` gang."""

    main_ip: str  # address of the control task (node 0)
    num_nodes: int
    node_index: int
    control_task_id: str | None


#: ``current.parallel`` outside a gang: one node, the local machine.
SINGLE_NODE = Parallel("127.0.0.1", 1, 0, None)


class Current:
    """The singleton behind ``from headwater import current``."""

    _FIELDS = (
        "flow_name", "run_id", "step_name", "task_id", "retry_count", "origin_run_id",
        "namespace", "username", "parameter_names", "graph", "tags",
    )

    def __init__(self) -> None:
        self._values: dict[str, Any] = {}
        self._running = False

    def _set(self, **values: Any) -> None:
        self._values = dict(values)
        self._running = True

    def _update(self, **values: Any) -> None:
        self._values.update(values)

    def _clear(self) -> None:
        self._values = {}
        self._running = False

    @property
    def is_running_flow(self) -> bool:
        return self._running

    @property
    def pathspec(self) -> str | None:
        if not self._running:
            return None
        v = self._values
        return f"{v['flow_name']}/{v['run_id']}/{v['step_name']}/{v['task_id']}"

    @property
    def parallel(self) -> Parallel:
        """This task's place in a ``@parallel`` gang (a single node outside one)."""
        return self._values.get("parallel") or SINGLE_NODE

    @property
    def is_parallel(self) -> bool:
        """True in a task of a ``@parallel`` step."""
        return bool(self._values.get("is_parallel", False))

    @property
    def tempdir(self) -> str:
        return self._values.get("tempdir") or os.environ.get("HEADWATER_TEMPDIR", ".")

    @property
    def run(self) -> Any:
        from ..client import Run

        return Run(f"{self.flow_name}/{self.run_id}", _namespace_check=False)

    @property
    def task(self) -> Any:
        from ..client import Task

        return Task(self.pathspec, _namespace_check=False)

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return getattr(self, key)
        except AttributeError:
            return default

    def __contains__(self, key: str) -> bool:
        return key in self._values or key in ("is_running_flow", "pathspec", "tempdir", "parallel", "is_parallel")

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        values = self.__dict__.get("_values", {})
        if name in values:
            return values[name]
        if name in Current._FIELDS:
            return None
        raise AttributeError(f"current has no attribute {name!r} (is a decorator that provides it missing?)")

    def __repr__(self) -> str:
        if not self._running:
            return "<current: not running a flow>"
        return f"<current: {self.pathspec}>"


current = Current()


def task_datastore_root() -> str | None:
    """The datastore root of the running task (from its TaskSpec; ``--datastore-root`` reaches
    it that way, not through the environment), or None outside a task (internal)."""
    return current._values.get("_datastore_root") if current.is_running_flow else None
