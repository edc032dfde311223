"""FlowMutator / StepMutator adding and removing decorators, and a StepDecorator subclass with
Metaflow's hook names (compat fixture)."""

import os

from metaflow import FlowMutator, FlowSpec, StepMutator, environment, step
from metaflow.decorators import StepDecorator

try:  # headwater's public helper
    from metaflow.decorators import make_step_decorator
except ImportError:  # Metaflow applies its own step decorators through this helper
    from functools import partial

    from metaflow.decorators import _base_step_decorator

    def make_step_decorator(cls):
        return partial(_base_step_decorator, cls)


class HookLog(StepDecorator):
    """Sets artifacts from the task hooks Metaflow calls."""

    name = "compat_hooklog"
    defaults = {"tag": "none"}

    def task_pre_step(self, step_name, task_datastore, metadata, run_id, task_id, flow, graph, retry_count,
                      max_user_code_retries, ubf_context, inputs):
        flow.hook_pre = [step_name, retry_count, max_user_code_retries, self.attributes["tag"]]

    def task_decorate(self, step_func, flow, graph, retry_count, max_user_code_retries, ubf_context):
        def wrapped(*args):
            flow.decorated = True
            return step_func(*args)
        return wrapped

    def task_post_step(self, step_name, flow, graph, retry_count, max_user_code_retries):
        flow.hook_post = step_name

    def task_finished(self, step_name, flow, graph, is_task_ok, retry_count, max_user_code_retries):
        print("HOOK task_finished", step_name, is_task_ok)


hooklog = make_step_decorator(HookLog)


class AddEnvAndRetry(FlowMutator):
    """Every step gets @environment(ADDED=<step>) and @retry(times=1)."""

    def mutate(self, mutable_flow):
        for name, s in mutable_flow.steps:
            s.add_decorator(environment, deco_kwargs={"vars": {"ADDED": name}})
            s.add_decorator("retry:times=1,minutes_between_retries=0")


class DropEnv(StepMutator):
    """Removes @environment from its step."""

    def mutate(self, mutable_step):
        mutable_step.remove_decorator("environment")


@AddEnvAndRetry
class MutatorFlow(FlowSpec):
    """start keeps the added decorators, end drops @environment; start has a hook-logging decorator."""

    @hooklog(tag="x")
    @step
    def start(self):
        self.added = os.environ.get("ADDED")
        self.next(self.end)

    @DropEnv
    @step
    def end(self):
        self.added = os.environ.get("ADDED")


if __name__ == "__main__":
    MutatorFlow()
