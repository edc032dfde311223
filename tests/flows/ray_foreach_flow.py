"""A foreach whose tasks record the Ray node they ran on (Ray launcher tests)."""

from headwater import FlowSpec, Parameter, current, resources, step


def node_id():
    import ray

    return ray.get_runtime_context().get_node_id()


class RayForeachFlow(FlowSpec):
    n = Parameter("n", default=6, type=int)
    sleep = Parameter("sleep", default=0.5, type=float, help="seconds each task sleeps")

    @step
    def start(self):
        self.items = list(range(self.n))
        self.next(self.work, foreach="items")

    @step
    def work(self):
        import time

        time.sleep(self.sleep)  # keep both nodes busy
        self.node = node_id()
        self.square = self.input * self.input
        print(f"square of {self.input} on {current.task_id}")
        self.next(self.join)

    @step
    def join(self, inputs):
        self.squares = sorted(i.square for i in inputs)
        self.nodes = sorted({i.node for i in inputs})
        self.next(self.big)

    @resources(cpu=3)
    @step
    def big(self):
        self.big_node = node_id()
        self.next(self.end)

    @step
    def end(self):
        print("done", len(self.squares))


if __name__ == "__main__":
    RayForeachFlow()
