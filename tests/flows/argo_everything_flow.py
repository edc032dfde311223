"""The flow that shows what headwater compiles to Argo: a branch, a nested foreach, a switch,
@retry (a step that fails on its first attempt), @catch (a step that always raises, retried
once, caught on its last attempt), @timeout, @resources, @schedule and @trigger (and
current.trigger)."""
from headwater import FlowSpec, Parameter, catch, current, resources, retry, schedule, step, timeout, trigger


@trigger(event={"name": "data.ready", "parameters": {"alpha": "alpha"}})
@schedule(cron="15 4 * * *")
class ArgoEverythingFlow(FlowSpec):
    alpha = Parameter("alpha", default=2, help="a multiplier")

    @step
    def start(self):
        trigger = current.get("trigger")  # set when an event started a deployed run
        self.trigger_event = (trigger.event.name, trigger.event.id) if trigger else None
        self.next(self.flaky, self.sized)

    @retry(times=1)
    @step
    def flaky(self):
        if current.retry_count == 0:
            raise RuntimeError("the first attempt fails")
        self.recovered_on = current.retry_count
        self.next(self.branch_join)

    @timeout(seconds=120)
    @resources(cpu=1, memory=500)
    @step
    def sized(self):
        self.scaled = 10 * self.alpha
        self.next(self.branch_join)

    @step
    def branch_join(self, inputs):
        self.summary = [inputs.flaky.recovered_on, inputs.sized.scaled]
        self.next(self.fan)

    @step
    def fan(self):
        self.outer = [1, 2]
        self.next(self.outer_body, foreach="outer")

    @step
    def outer_body(self):
        self.o = self.input
        self.inner = ["x", "y"]
        self.next(self.inner_body, foreach="inner")

    @step
    def inner_body(self):
        self.pair = f"{self.o}{self.input}"
        self.next(self.inner_join)

    @step
    def inner_join(self, inputs):
        self.pairs = sorted(i.pair for i in inputs)
        self.next(self.outer_join)

    @step
    def outer_join(self, inputs):
        self.all_pairs = sorted(p for i in inputs for p in i.pairs)
        self.next(self.route)

    @step
    def route(self):
        self.size = "big" if len(self.all_pairs) > 3 else "small"
        self.next({"big": self.big, "small": self.small}, condition="size")

    @step
    def big(self):
        self.label = "many pairs"
        self.next(self.risky)

    @step
    def small(self):
        self.label = "few pairs"
        self.next(self.risky)

    @catch(var="failure", print_exception=False)
    @retry(times=1)
    @step
    def risky(self):
        self.attempts_seen = current.retry_count
        raise ValueError(f"always fails (attempt {current.retry_count})")
        self.next(self.end)

    @step
    def end(self):
        self.failure_type = self.failure.type


if __name__ == "__main__":
    ArgoEverythingFlow()
