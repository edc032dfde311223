"""User step decorators: the generator form and the UserStepDecorator class form (compat fixture)."""

from metaflow import FlowSpec, UserStepDecorator, step, user_step_decorator


@user_step_decorator
def stamp(step_name, flow, inputs=None, attributes=None):
    flow.before = f"before {step_name}"
    yield
    flow.after = f"after {step_name}"


class Counted(UserStepDecorator):
    def pre_step(self, step_name, flow, inputs=None):
        flow.counted = getattr(flow, "counted", 0) + 1


class UserDecoFlow(FlowSpec):
    """Two steps wrapped by user decorators."""

    @stamp
    @step
    def start(self):
        self.seen_before = self.before
        self.next(self.end)

    @Counted
    @stamp
    @step
    def end(self):
        self.seen_counted = self.counted


if __name__ == "__main__":
    UserDecoFlow()
