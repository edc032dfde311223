"""A flow for Metaflow-style StepDecorator hooks, attached with --with hooklog."""

from headwater import FlowSpec, step
import user_decos  # noqa: F401  (defines @hooklog, found by --with once imported)


class HooksFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.fails)

    @step
    def fails(self):
        self.partial = 1
        raise KeyError("nope")
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    HooksFlow()
