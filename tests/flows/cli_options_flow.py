"""For Metaflow-style command lines: a foreach whose body has a card, a step that
fails on its first attempt while HW_FLAKY is set (so ``--with retry`` is visible),
and the client namespace a step sees (``run --namespace``)."""
import os

from headwater import FlowSpec, card, current, get_namespace, step


class CliOptionsFlow(FlowSpec):
    @step
    def start(self):
        self.items = [1, 2, 3]
        self.namespace_seen = get_namespace()
        self.next(self.body, foreach="items")

    @card
    @step
    def body(self):
        self.x = self.input * 10
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(i.x for i in inputs)
        self.next(self.flaky)

    @step
    def flaky(self):
        if current.retry_count == 0 and os.environ.get("HW_FLAKY"):
            raise RuntimeError("flaky fails on its first attempt")
        self.attempts = current.retry_count
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    CliOptionsFlow()
