"""Names in attempt records that the runtime writes and the client reads: task metadata
entries, the parameters pseudo-step, the exception type of a task that died."""

from __future__ import annotations

from ..exceptions import TaskCrashed, qualified_type

#: The pseudo-step whose one task (``PARAMETERS_TASK_ID``) holds a run's parameters and
#: constants; it is the start step's input and is not a step of the flow.
PARAMETERS_STEP = "_parameters"
PARAMETERS_TASK_ID = "0"
PARAMETERS_PATH = f"{PARAMETERS_STEP}/{PARAMETERS_TASK_ID}"
#: The exception type recorded for a task whose process died without committing.
CRASH_TYPE = qualified_type(TaskCrashed)

#: Every task of a ``@parallel`` gang: how many tasks the gang has.
WORLD_SIZE_KEY = "parallel-world-size"
#: Marks the control task of a gang (``Step.control_tasks`` looks for it); Metaflow's names.
TASK_TYPE_KEY = "internal_task_type"
CONTROL_TASK = "control_task"
