"""A step asking for Ray and Kubernetes at once: the run is refused before anything runs."""
from headwater import FlowSpec, kubernetes, ray_task, step


class KubeRayConflictFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.train)

    @kubernetes
    @ray_task
    @step
    def train(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    KubeRayConflictFlow()
