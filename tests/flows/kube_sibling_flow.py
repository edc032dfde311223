"""A branch that may fail beside a @kubernetes step that naps: the scheduler then kills (deletes) its Job
(Kubernetes launcher fault tests)."""
import time

from headwater import FlowSpec, Parameter, kubernetes, step


class KubeSiblingFlow(FlowSpec):
    nap = Parameter("nap", help="Seconds the Kubernetes step sleeps.", type=float, default=600.0)
    fail_sibling = Parameter("fail_sibling", help="Whether the local branch raises.", type=bool, default=False)

    @step
    def start(self):
        self.next(self.sibling, self.sleeper)

    @step
    def sibling(self):
        if self.fail_sibling:
            time.sleep(2)  # the sleeper's Job is created and running by then
            raise RuntimeError("the sibling fails")
        self.next(self.join)

    @kubernetes
    @step
    def sleeper(self):
        print("sleeping", flush=True)
        time.sleep(self.nap)
        self.slept = self.nap
        self.next(self.join)

    @step
    def join(self, inputs):
        self.slept = inputs.sleeper.slept
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    KubeSiblingFlow()
