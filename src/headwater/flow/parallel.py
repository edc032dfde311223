"""``@parallel``: a step that runs as a gang of N tasks started together (authoring layer).

``self.next(self.train, num_parallel=N)`` starts N tasks of the ``@parallel`` step
``train`` at once; they are joined like a foreach. Task 0 is the *control task*
(id ``<n>``), the others are workers with Metaflow's ids ``<n>_node_<i>``. This
module holds the naming and metadata conventions the scheduler, the executor and
the client share.
"""

from __future__ import annotations

from typing import Any

from ..store.taskmeta import CONTROL_TASK, TASK_TYPE_KEY, WORLD_SIZE_KEY
from .current import Parallel, current
from .decorators import StepDecorator, _make

#: ``foreach_stack`` variable of a gang's frame (Metaflow's name for it).
PARALLEL_VAR = "_parallel_ubf_iter"
#: Address of the control task when the gang runs on this machine.
LOCAL_MAIN_IP = "127.0.0.1"

_NODE = "_node_"


def gang_task_ids(control_task_id: str, num_nodes: int) -> list[str]:
    """The task ids of a gang: the control task's first, then ``<control>_node_<i>``."""
    return [control_task_id] + [f"{control_task_id}{_NODE}{i}" for i in range(1, num_nodes)]


def control_task_id(task_id: str) -> str:
    """The control task's id for any task id of its gang."""
    return task_id.split(_NODE, 1)[0]


def gang_metadata(task_id: str, node_index: int, num_nodes: int) -> tuple[tuple[str, str], ...]:
    """Metadata a gang task records (``TaskSpec.extra``)."""
    meta = ((WORLD_SIZE_KEY, str(num_nodes)),)
    return meta + ((TASK_TYPE_KEY, CONTROL_TASK),) if node_index == 0 else meta


class ParallelDecorator(StepDecorator):
    """Run the step as N tasks started together; ``current.parallel`` tells each where it sits.

    The step must be entered with ``self.next(self.<step>, num_parallel=N)`` and
    must go to a join step, whose inputs are the N tasks.

    Examples
    --------
    >>> @parallel
    ... @step
    ... def train(self):
    ...     self.rank = current.parallel.node_index
    ...     self.next(self.join)
    """

    name = "parallel"
    defaults: dict[str, Any] = {}

    def hw_task_pre_step(self, ctx: Any) -> None:
        spec = ctx.spec
        frame = spec.foreach_stack[-1] if spec.foreach_stack else None
        if frame is None or frame.var != PARALLEL_VAR:
            # Run on its own (e.g. ``python flow.py step``): a gang of one.
            info = Parallel(LOCAL_MAIN_IP, 1, 0, spec.task_id)
        else:
            info = Parallel(LOCAL_MAIN_IP, frame.num_splits, frame.index, control_task_id(spec.task_id))
        current._update(parallel=info, is_parallel=True)


parallel = _make(ParallelDecorator)
