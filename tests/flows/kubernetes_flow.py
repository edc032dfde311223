"""@kubernetes steps with @resources, @timeout and @environment: what the Job tests build pods for."""
import os

from headwater import FlowSpec, Parameter, environment, kubernetes, resources, step, timeout


class KubernetesFlow(FlowSpec):
    alpha = Parameter("alpha", default=2)

    @kubernetes(cpu=2, memory=2048, image="python:3.11-slim")
    @step
    def start(self):
        self.items = [1, 2, 3]
        self.next(self.square, foreach="items")

    @kubernetes(gpu=1, gpu_vendor="amd", memory=8192, use_tmpfs=True, shared_memory=256,
                persistent_volume_claims={"datasets": "/mnt/datasets"},
                tolerations=[{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
                node_selector="pool=gpu,zone=a", labels={"team": "ml"}, annotations={"owner": "ml@example.com"})
    @resources(cpu=2, memory=1024)
    @timeout(minutes=10)
    @environment(vars={"GREETING": "hello"})
    @step
    def square(self):
        self.value = self.input ** self.alpha
        self.greeting = os.environ.get("GREETING")
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(i.value for i in inputs)
        self.next(self.end)

    @kubernetes
    @step
    def end(self):
        pass


if __name__ == "__main__":
    KubernetesFlow()
