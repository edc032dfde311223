"""A step whose task_pre_step hook is slow (longer than the scheduler's GRACE) and
whose body then runs past its @timeout: the timeout must still fire inside the step."""
import time

from headwater import FlowSpec, step, timeout
from headwater.decorators import StepDecorator, make_step_decorator


class SlowSetup(StepDecorator):
    """Stands in for setup that takes a while before the step runs (e.g. fetching @secrets)."""

    name = "slow_setup"
    defaults = {"seconds": 2.5}

    def task_pre_step(self, step_name, task_datastore, metadata, run_id, task_id, flow, graph,
                      retry_count, max_user_code_retries, ubf_context, inputs):
        time.sleep(float(self.attributes["seconds"]))


slow_setup = make_step_decorator(SlowSetup)


class SlowSetupTimeoutFlow(FlowSpec):
    @slow_setup
    @timeout(seconds=5)
    @step
    def start(self):
        self.progress = "set before the timeout"
        time.sleep(60)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    SlowSetupTimeoutFlow()
