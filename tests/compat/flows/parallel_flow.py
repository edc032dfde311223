"""@parallel with num_parallel, run locally, and its join (compat fixture)."""

from metaflow import FlowSpec, current, parallel, step


class ParallelFlow(FlowSpec):
    """A gang of two tasks of one @parallel step."""

    @step
    def start(self):
        self.base = 100
        self.next(self.train, num_parallel=2)

    @parallel
    @step
    def train(self):
        self.node = current.parallel.node_index
        self.nodes = current.parallel.num_nodes
        self.is_parallel = current.is_parallel
        self.value = self.base + self.node
        print("node", self.node, "of", self.nodes)
        self.next(self.join)

    @step
    def join(self, inputs):
        self.values = sorted(i.value for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ParallelFlow()
