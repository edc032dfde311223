"""The smallest flow: its CLI is the one docs/compat.md describes (compat fixture)."""

from metaflow import FlowSpec, step


class HelloFlow(FlowSpec):
    """Say hello."""

    @step
    def start(self):
        self.message = "hello"
        self.next(self.end)

    @step
    def end(self):
        print(self.message)


if __name__ == "__main__":
    HelloFlow()
