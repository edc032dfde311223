"""User step decorators, mutators and Metaflow-style hooks (tests/flow/test_user_decorators.py)."""

from headwater import FlowSpec, Parameter, step
from user_decos import AddRetry, Counter, Outer, TimeEnd, choose_branch, replacer, skipper, swallow, timing


@TimeEnd
class UserDecoFlow(FlowSpec):
    alpha = Parameter("alpha", default=1)

    @timing
    @step
    def start(self):
        self.x = 1
        self.next(self.skipped)

    @skipper(k=2)
    @step
    def skipped(self):
        self.never = 1
        self.next(self.swapped)

    @replacer
    @step
    def swapped(self):
        self.original_ran = True
        self.next(self.rescued)

    @swallow
    @Outer
    @Counter(n=5)
    @AddRetry
    @step
    def rescued(self):
        self.before = 1
        raise ValueError("boom")
        self.next(self.fan)

    @choose_branch
    @step
    def fan(self):
        self.items = [1]
        self.next(self.body, foreach="items")

    @step
    def body(self):
        self.item = self.input
        self.next(self.join)

    @step
    def join(self, inputs):
        self.collected = sorted(i.item for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    UserDecoFlow()
