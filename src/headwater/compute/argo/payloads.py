"""Hand the payloads of the events that started a deployed run to its tasks (internal, pure).

For each trigger the WorkflowTemplate gets a workflow parameter named after the trigger's
Sensor dependency (default ``null``: that event did not start the run), which the Sensor sets
to the event's payload, and every step container gets it in the environment variable
``HEADWATER_ARGO_EVENT_PAYLOAD_<type>_<name>``; the task builds ``current.trigger`` from them
(``headwater.events``), as Metaflow does.
"""

from __future__ import annotations

import copy
from typing import Any

from ...flow.triggers import FlowTrigger
from . import naming as nm
from .compile import ArgoCompileError

#: A payload parameter's value when its event did not start the run (JSON null, as Metaflow).
NO_PAYLOAD = "null"


def add_event_payloads(workflow_template: dict[str, Any], triggers: list[FlowTrigger]) -> dict[str, Any]:
    """``workflow_template`` with a payload parameter per trigger, passed to every step (a new dict)."""
    wt = copy.deepcopy(workflow_template)
    params = wt["spec"].setdefault("arguments", {}).setdefault("parameters", [])
    taken = {p["name"] for p in params}
    env = []
    for t in triggers:
        if t.sanitized_name in taken:
            raise ArgoCompileError(f"The flow parameter {t.sanitized_name!r} clashes with the workflow parameter that "
                                   f"carries the payload of event {t.name!r}.", hint="Rename the parameter.")
        params.append({"name": t.sanitized_name, "value": NO_PAYLOAD})
        env.append({"name": t.payload_env, "value": "{{workflow.parameters." + t.sanitized_name + "}}"})
    for template in wt["spec"]["templates"]:
        if template["name"].startswith(nm.STEP_TEMPLATE_PREFIX) and "container" in template:
            template["container"]["env"] = template["container"].get("env", []) + env
    return wt
