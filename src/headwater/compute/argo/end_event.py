"""The task that announces a deployed run's success: ``headwater.<flow>.end`` (internal, pure).

When an events webhook is configured, ``argo-workflows create`` adds to the WorkflowTemplate's
``main`` DAG one task after the end step, ``publish-end-event``, that POSTs the event
``@trigger_on_finish`` flows listen for (``headwater.compute.argo.events``). Its payload is
Metaflow's: the end task's pathspec, flow, run, step and task, the ``@project`` fields, and the
field that marks events headwater published itself. It runs only when the end step succeeded.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from ...flow.triggers import AUTO_GENERATED_FIELD, end_event_name
from ...plan import FIRST_TASK_ID
from .compile import RUN_ID, ArgoCompileError
from . import naming as nm

#: The DAG task and the container template that publish the event.
TASK = TEMPLATE = "publish-end-event"
#: The module the container runs.
PUBLISHER = "headwater.compute.argo.events"
#: ``current``'s @project fields copied into the payload (Metaflow's).
PROJECT_FIELDS = ("project_name", "branch_name", "is_user_branch", "is_production", "project_flow_name")


@dataclass(frozen=True)
class EndEvent:
    """Where to publish, and what the flow is called (``project_fields``: ``current``'s @project fields)."""

    webhook_url: str
    flow_name: str
    end_step: str
    image: str
    project_fields: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return end_event_name(self.flow_name, self.project_fields.get("project_flow_name"))

    def payload(self) -> dict[str, str]:
        """The payload fields (strings, as Metaflow sends them); Argo fills in the run id."""
        pathspec = f"{self.flow_name}/{RUN_ID}/{self.end_step}/{FIRST_TASK_ID}"
        out = {"id": pathspec, "pathspec": pathspec, "flow_name": self.flow_name, "run_id": RUN_ID,
               "step_name": self.end_step, "task_id": FIRST_TASK_ID}
        out.update({k: str(self.project_fields[k]) for k in PROJECT_FIELDS if self.project_fields.get(k)})
        out[AUTO_GENERATED_FIELD] = "True"
        return out


def add_end_event(workflow_template: dict[str, Any], event: EndEvent) -> dict[str, Any]:
    """``workflow_template`` with the task that publishes ``event`` after the end step (a new dict)."""
    end_task = nm.task_name(event.end_step)
    wt = copy.deepcopy(workflow_template)
    templates = wt["spec"]["templates"]
    (main,) = [t for t in templates if t["name"] == nm.ENTRYPOINT]
    tasks = main["dag"]["tasks"]
    if any(t["name"] == TASK for t in tasks):
        raise ArgoCompileError(f"A step named {TASK.replace('-', '_')!r} clashes with the task that publishes "
                               "the run's end event.", hint="Rename the step.")
    args = ["-m", PUBLISHER, "--url", event.webhook_url, "--name", event.name]
    for key, value in event.payload().items():
        args += ["--field", f"{key}={value}"]
    tasks.append({"name": TASK, "template": TEMPLATE, "dependencies": [end_task]})
    templates.append({"name": TEMPLATE, "container": {"image": event.image, "command": ["python"], "args": args}})
    return wt
