"""Reassigning a class-level constant inside a step (compat fixture)."""

from metaflow import FlowSpec, step


class ConstantFlow(FlowSpec):
    """start tries to overwrite LIMIT."""

    LIMIT = 3

    @step
    def start(self):
        try:
            self.LIMIT = 4
        except AttributeError as e:
            self.error = str(e)
        self.limit_after = self.LIMIT
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ConstantFlow()
