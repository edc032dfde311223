"""A required parameter and a dashed parameter name (the Runner's keyword is ``name_with_dash``)."""
from headwater import FlowSpec, Parameter, step


class RequiredFlow(FlowSpec):
    alpha = Parameter("alpha", type=float, required=True, help="Required")
    label = Parameter("label-text", default="plain", help="A dashed name")

    @step
    def start(self):
        self.doubled = self.alpha * 2
        self.next(self.end)

    @step
    def end(self):
        self.seen = (self.alpha, self.label)


if __name__ == "__main__":
    RequiredFlow()
