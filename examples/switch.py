"""SwitchFlow: conditional branching, and a loop built from a switch.

What it shows:
  * ``self.next({"fast": self.fast, "thorough": self.thorough}, condition="route")``
    runs exactly ONE of the listed steps, chosen at run time by the value of the
    artifact named by ``condition`` (here derived from the ``--mode`` parameter).
    Unlike a split there is no join: the chosen branch simply continues;
  * a switch case may point back to the step itself: ``refine`` runs again and
    again (each iteration a new task that sees the previous one's artifacts)
    until ``self.rounds`` reaches ``--limit``, then the "done" case moves on.

Run it:
    python examples/switch.py run                      # fast path, 3 rounds
    python examples/switch.py run --mode thorough --limit 5
"""

from headwater import FlowSpec, Parameter, step


class SwitchFlow(FlowSpec):
    """start -?-> (fast | thorough) -> prepare -> refine (loops) -> end."""

    mode = Parameter("mode", default="fast", help="Which path to take: 'fast' or 'thorough'.")
    limit = Parameter("limit", default=3, help="How many times `refine` runs.")

    @step
    def start(self):
        if self.mode not in ("fast", "thorough"):
            raise ValueError(f"--mode must be 'fast' or 'thorough', not {self.mode!r}")
        self.route = self.mode
        self.next({"fast": self.fast, "thorough": self.thorough}, condition="route")

    @step
    def fast(self):
        self.path = "fast"
        self.step_size = 0.5
        self.next(self.prepare)

    @step
    def thorough(self):
        self.path = "thorough"
        self.step_size = 0.1
        self.next(self.prepare)

    @step
    def prepare(self):
        # Both switch branches lead here; only one of them ran.
        self.rounds = 0
        self.estimate = 0.0
        self.history = []
        self.next(self.refine)

    @step
    def refine(self):
        # One loop iteration: this step's own artifacts from the previous
        # iteration are the inputs of this one.
        self.rounds += 1
        self.estimate += self.step_size
        self.history = self.history + [self.estimate]
        self.status = "again" if self.rounds < self.limit else "done"
        self.next({"again": self.refine, "done": self.end}, condition="status")

    @step
    def end(self):
        assert self.rounds == self.limit and len(self.history) == self.limit
        print(f"took the {self.path} path, refined {self.rounds} times: {self.history}")


if __name__ == "__main__":
    SwitchFlow()
