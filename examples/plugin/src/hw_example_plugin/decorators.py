"""A Metaflow-style step decorator, a user step decorator and a flow decorator."""

from __future__ import annotations

import sys
import time

from headwater import user_step_decorator
from headwater.decorators import FlowDecorator, StepDecorator


class StampDecorator(StepDecorator):
    """``@stamp(label=...)``: record which step and attempt produced the task's artifacts."""

    name = "stamp"
    defaults = {"label": "stamped"}

    def task_pre_step(self, step_name, task_datastore, metadata, run_id, task_id, flow, graph,
                      retry_count, max_user_code_retries, ubf_context, inputs):
        print(f"stamp: starting {step_name} (task {task_id}, attempt {retry_count})", file=sys.stderr)

    def task_post_step(self, step_name, flow, graph, retry_count, max_user_code_retries):
        flow.stamp = f"{self.attributes['label']}:{step_name}:{retry_count}"


@user_step_decorator
def timed(step_name, flow, inputs):
    """Store the step's wall time in ``self.step_seconds``."""
    started = time.time()
    yield
    flow.step_seconds = time.time() - started


class OwnerDecorator(FlowDecorator):
    """``@owner(team=...)``: a flow decorator with a top-level ``--contact`` option."""

    name = "owner"
    defaults = {"team": None}
    options = {"contact": {"default": "nobody", "help": "Who to call when this flow fails."}}

    def flow_init(self, flow, graph, environment, flow_datastore, metadata, logger, echo, options):
        echo(f"owner: team {self.attributes['team']}, contact {options['contact']}")

    def get_top_level_options(self):
        return [("contact", "nobody")]
