"""Every shape the Argo compiler handles: parameters, branch, nested foreach, switch,
retry, catch, timeout, resources and a schedule."""
from headwater import FlowSpec, Parameter, catch, resources, retry, schedule, step, timeout


@schedule(cron="30 2 * * *", timezone="Europe/Paris")
class ArgoAllFlow(FlowSpec):
    alpha = Parameter("alpha", default=3, help="a number")
    mode = Parameter("mode", default="high")

    @step
    def start(self):
        self.next(self.left, self.right)

    @retry(times=2, minutes_between_retries=3)
    @step
    def left(self):
        self.next(self.branch_join)

    @timeout(minutes=2)
    @resources(cpu=2, memory=1500, gpu=1)
    @step
    def right(self):
        self.next(self.branch_join)

    @step
    def branch_join(self, inputs):
        self.next(self.fan)

    @step
    def fan(self):
        self.outer = [1, 2]
        self.next(self.outer_body, foreach="outer")

    @step
    def outer_body(self):
        self.inner = ["a", "b"]
        self.next(self.inner_body, foreach="inner")

    @catch(var="err")
    @step
    def inner_body(self):
        self.next(self.inner_join)

    @step
    def inner_join(self, inputs):
        self.next(self.outer_join)

    @step
    def outer_join(self, inputs):
        self.choice = self.mode
        self.next(self.route)

    @step
    def route(self):
        self.next({"high": self.high, "low": self.low}, condition="choice")

    @step
    def high(self):
        self.next(self.merge)

    @step
    def low(self):
        self.next(self.merge)

    @step
    def merge(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ArgoAllFlow()
