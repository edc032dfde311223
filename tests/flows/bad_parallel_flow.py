"""Invalid @parallel graphs: a num_parallel target without @parallel, a @parallel
step reached without num_parallel, and a @parallel step not followed by a join."""
from headwater import FlowSpec, parallel, step


class BadParallelFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.plain, num_parallel=2)

    @step
    def plain(self):
        self.next(self.gang)

    @parallel
    @step
    def gang(self):
        self.next(self.after)

    @step
    def after(self):
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    BadParallelFlow()
