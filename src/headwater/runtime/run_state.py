"""What a run fixed when it started and a later process must apply again
(orchestration layer): its config values and its flow decorators' state.

A task in another interpreter (the ``step`` command) and ``resume`` re-import
the flow; this reads the values back from the run's records so they see exactly
what the run saw, whatever the command line or the environment says now.
"""

from __future__ import annotations

from typing import Any

from ..flow.config import apply_configs, flow_configs
from ..flow.flow_decorators import flow_decorators
from ..store import Datastore
from ..store.taskmeta import PARAMETERS_STEP, PARAMETERS_TASK_ID


def recorded_configs(ds: Datastore, flow_cls: type, run_id: str) -> dict[str, Any]:
    """Raw config values (name -> value) stored with run ``run_id`` of ``flow_cls``."""
    configs = flow_configs(flow_cls)
    if not configs:
        return {}
    rec = ds.records.read_attempt(flow_cls.__name__, run_id, PARAMETERS_STEP, PARAMETERS_TASK_ID, 0)
    artifacts = rec.get("artifacts") or {}
    return {c.name: ds.content.load(artifacts[c.attr_name]) if c.attr_name in artifacts else None
            for c in configs}


def restore_run_state(ds: Datastore, flow_cls: type, run_id: str) -> None:
    """Apply run ``run_id``'s configs and flow-decorator state to ``flow_cls`` (in a task process)."""
    if flow_configs(flow_cls):
        apply_configs(flow_cls, recorded_configs(ds, flow_cls, run_id))
    decos = flow_decorators(flow_cls)
    if decos:
        run_rec = ds.records.read_run(flow_cls.__name__, run_id)
        for d in decos:
            d.validate()
            d.restore(run_rec)
