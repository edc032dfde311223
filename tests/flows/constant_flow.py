"""Class-level constants and Parameters are read-only in steps (``--mode`` picks the attempt)."""
from headwater import FlowSpec, Parameter, step


class ConstantFlow(FlowSpec):
    LIMIT = 10
    mode = Parameter("mode", default="read")

    @step
    def start(self):
        self.before = "set before"
        if self.mode == "constant":
            self.LIMIT = 11
        elif self.mode == "parameter":
            self.mode = "changed"
        elif self.mode == "except":
            try:
                self.LIMIT = 12
            except AttributeError as e:  # Metaflow raises AttributeError: user code may catch it
                self.caught = str(e)
        self.seen = self.LIMIT
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ConstantFlow()
