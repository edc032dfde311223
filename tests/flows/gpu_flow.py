"""@resources(gpu=1) tasks on a (fake) machine description: each gets its own GPU."""
import os
import time

from headwater import FlowSpec, resources, step


class GpuFlow(FlowSpec):
    @step
    def start(self):
        self.items = list(range(4))
        self.next(self.train, foreach="items")

    @resources(gpu=1, cpu=1, memory=1000)
    @step
    def train(self):
        self.device = os.environ.get("CUDA_VISIBLE_DEVICES")
        self.began = time.time()
        time.sleep(0.6)
        self.ended = time.time()
        self.next(self.join)

    @step
    def join(self, inputs):
        self.spans = [(i.device, i.began, i.ended) for i in inputs]
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    GpuFlow()
