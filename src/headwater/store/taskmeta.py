"""Names of task metadata entries in attempt records that the runtime writes and the client reads."""

from __future__ import annotations

#: Every task of a ``@parallel`` gang: how many tasks the gang has.
WORLD_SIZE_KEY = "parallel-world-size"
#: Marks the control task of a gang (``Step.control_tasks`` looks for it); Metaflow's names.
TASK_TYPE_KEY = "internal_task_type"
CONTROL_TASK = "control_task"
