"""One @kubernetes step in an otherwise local flow: only `train` becomes a Kubernetes Job."""
import os

from headwater import FlowSpec, kubernetes, step


class KubeMixedFlow(FlowSpec):
    @step
    def start(self):
        self.pod = os.environ.get("HEADWATER_KUBERNETES_POD_NAME")
        self.x = 20
        self.next(self.train)

    @kubernetes(cpu=2, memory=1024)
    @step
    def train(self):
        self.pod = os.environ.get("HEADWATER_KUBERNETES_POD_NAME")
        self.y = self.x * 2 + 2
        print(f"trained on {self.pod}")
        self.next(self.end)

    @step
    def end(self):
        self.end_pod = os.environ.get("HEADWATER_KUBERNETES_POD_NAME")
        self.z = self.y + 1


if __name__ == "__main__":
    KubeMixedFlow()
