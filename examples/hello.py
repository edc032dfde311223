"""HelloFlow: the smallest useful flow — three steps in a straight line.

What it shows:
  * a flow is a class deriving from ``FlowSpec``; each ``@step`` method is a task;
  * ``self.next(self.<step>)`` wires the graph (start -> hello -> end);
  * any attribute set on ``self`` is an *artifact*: it is persisted when the step
    ends and is visible to every later step (and to the client API afterwards);
  * ``current`` tells a running step where it is (flow name, run id, step, task).

Run it:
    python examples/hello.py run
    python examples/hello.py show      # print the graph
"""

from headwater import FlowSpec, current, step


class HelloFlow(FlowSpec):
    """A linear flow: start -> hello -> end."""

    @step
    def start(self):
        """Create an artifact."""
        self.message = "Hello"
        print(f"starting run {current.run_id} of {current.flow_name}")
        self.next(self.hello)

    @step
    def hello(self):
        """Read the artifact written by `start` and extend it."""
        self.message = f"{self.message}, world!"
        print(self.message)
        self.next(self.end)

    @step
    def end(self):
        """Artifacts from every earlier step are still here."""
        assert self.message == "Hello, world!"
        print(f"HelloFlow finished in step {current.step_name}, task {current.task_id}")


if __name__ == "__main__":
    HelloFlow()
