"""User step decorators and mutators used by user_decorators_flow.py (a module the flow imports)."""

from headwater import USER_SKIP_STEP, FlowMutator, StepMutator, UserStepDecorator, user_step_decorator
from headwater.decorators import StepDecorator


@user_step_decorator
def timing(step_name, flow, inputs):
    flow.log = getattr(flow, "log", []) + [f"timing-pre:{step_name}"]
    yield
    flow.timed = step_name


@user_step_decorator
def skipper(step_name, flow, inputs, attributes):
    flow.skip_attrs = attributes
    yield USER_SKIP_STEP


@user_step_decorator
def replacer(step_name, flow, inputs):
    def instead(self):
        self.replaced = True
        return True  # take the step's usual self.next

    yield instead


@user_step_decorator
def swallow(step_name, flow, inputs):
    try:
        yield
    except ValueError as e:
        flow.swallowed = str(e)


@user_step_decorator
def choose_branch(step_name, flow, inputs):
    flow.other_items = ["a", "b", "c"]
    yield {"foreach": "other_items"}


class Counter(UserStepDecorator):
    def init(self, *args, **kwargs):
        self.n = kwargs.get("n", 1)

    def pre_step(self, step_name, flow, inputs=None):
        flow.order = getattr(flow, "order", []) + ["counter-pre"]

    def post_step(self, step_name, flow, exception=None):
        flow.counted = self.n
        flow.order = flow.order + ["counter-post"]
        return exception, None


class Outer(UserStepDecorator):
    def pre_step(self, step_name, flow, inputs=None):
        flow.order = getattr(flow, "order", []) + ["outer-pre"]

    def post_step(self, step_name, flow, exception=None):
        flow.order = flow.order + ["outer-post"]
        return exception, None


class AddRetry(StepMutator):
    def mutate(self, mutable_step):
        mutable_step.flow.seen_specs = None
        mutable_step.add_decorator("retry", deco_kwargs={"times": 2, "minutes_between_retries": 0})


class TimeEnd(FlowMutator):
    def pre_mutate(self, mutable_flow):
        from headwater import Parameter

        mutable_flow.add_parameter("beta", Parameter("beta", default=7))

    def mutate(self, mutable_flow):
        for name, s in mutable_flow.steps:
            if name == "end":
                s.add_decorator(timing)


class HookLog(StepDecorator):
    """A Metaflow-style StepDecorator overriding every task hook."""

    name = "hooklog"
    defaults = {"handle": False}

    def task_pre_step(self, step_name, task_datastore, metadata, run_id, task_id, flow, graph,
                      retry_count, max_user_code_retries, ubf_context, inputs):
        flow.hooks = [f"pre:{step_name}:{task_id}:{retry_count}:{max_user_code_retries}"]

    def task_decorate(self, step_func, flow, graph, retry_count, max_user_code_retries, ubf_context):
        def wrapped(*args):
            flow.hooks = flow.hooks + ["decorated"]
            return step_func(*args)

        return wrapped

    def task_post_step(self, step_name, flow, graph, retry_count, max_user_code_retries):
        flow.hooks = flow.hooks + ["post"]

    def task_exception(self, exception, step_name, flow, graph, retry_count, max_user_code_retries):
        print(f"HOOKLOG exception {type(exception).__name__} in {step_name}")
        return self.attributes["handle"]

    def task_finished(self, step_name, flow, graph, is_task_ok, retry_count, max_user_code_retries):
        print(f"HOOKLOG finished {step_name} ok={is_task_ok}")

    def runtime_init(self, flow, graph, package, run_id):
        print(f"HOOKLOG runtime_init {type(flow).__name__}")

    def runtime_task_created(self, task_datastore, task_id, split_index, input_paths, is_cloned, ubf_context):
        print(f"HOOKLOG created {task_id}")

    def runtime_finished(self, exception):
        print(f"HOOKLOG runtime_finished {exception}")
