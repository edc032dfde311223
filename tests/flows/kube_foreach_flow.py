"""A small foreach whose steps print: run with --with kubernetes (every task a Job) and locally."""
from headwater import FlowSpec, Parameter, step


class KubeForeachFlow(FlowSpec):
    power = Parameter("power", default=2)

    @step
    def start(self):
        self.items = [1, 2, 3]
        print("starting the foreach")
        self.next(self.square, foreach="items")

    @step
    def square(self):
        self.value = self.input ** self.power
        print(f"square of {self.input} is {self.value}")
        self.next(self.join)

    @step
    def join(self, inputs):
        self.values = sorted(i.value for i in inputs)
        self.total = sum(self.values)
        self.next(self.end)

    @step
    def end(self):
        self.summary = f"total={self.total}"


if __name__ == "__main__":
    KubeForeachFlow()
