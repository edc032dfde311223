import os

from headwater import FlowSpec, Parameter, current, parallel, step


class ParallelFlow(FlowSpec):
    """A gang of N tasks of one @parallel step, joined."""

    nodes = Parameter("nodes", default=3, type=int)
    fail_node = Parameter("fail_node", default=-1, type=int)
    fail_attempts = Parameter("fail_attempts", default=99, type=int)

    @step
    def start(self):
        self.base = 100
        self.next(self.train, num_parallel=self.nodes)

    @parallel
    @step
    def train(self):
        p = current.parallel
        self.info = dict(p._asdict())
        self.is_parallel = current.is_parallel
        self.pid = os.getpid()
        self.my_input = self.input
        self.value = self.base + p.node_index
        print(f"node {p.node_index} of {p.num_nodes}")
        failing = current.retry_count < self.fail_attempts
        if p.node_index == self.fail_node and failing:
            raise RuntimeError(f"node {p.node_index} fails")
        if self.fail_node >= 0 and failing:
            import time

            time.sleep(60)  # the failing node's gang kills this one
        self.next(self.join)

    @step
    def join(self, inputs):
        self.values = [i.value for i in inputs]
        self.pids = {i.pid for i in inputs}
        self.inputs_seen = [i.my_input for i in inputs]
        self.infos = [i.info for i in inputs]
        self.next(self.end)

    @step
    def end(self):
        self.end_is_parallel = current.is_parallel
        self.end_parallel = tuple(current.parallel)


if __name__ == "__main__":
    ParallelFlow()
