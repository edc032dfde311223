"""ParametersFlow: every kind of run parameter, and a file included in the run.

What it shows:
  * ``Parameter``s become options of ``run`` (``--alpha 0.1``); their type comes
    from ``type=`` or is inferred from the default: str, int, float, bool;
  * ``JSONType`` parses a JSON string into Python objects;
  * a callable default is evaluated at run start with a context object
    (flow name, user name, parameter name, ...);
  * ``separator=","`` turns a string parameter into a list;
  * ``IncludeFile`` reads a local file when the run starts and stores its
    contents with the run, as a read-only artifact (here examples/data/notes.txt);
  * parameters are artifacts too: every step can read them, none can assign them.

Run it:
    python examples/parameters.py run
    python examples/parameters.py run --greeting hi --epochs 5 --alpha 0.01 \\
        --verbose True --hyperparams '{"layers": [8], "dropout": 0.5}' \\
        --colors cyan,magenta --notes examples/data/notes.txt
    python examples/parameters.py run --help      # lists the parameters
"""

import os

from headwater import FlowSpec, IncludeFile, JSONType, Parameter, current, step

NOTES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "notes.txt")


def default_label(ctx):
    """Callable default: computed once when the run starts."""
    return f"{ctx.flow_name}-by-{ctx.user_name}"


class ParametersFlow(FlowSpec):
    """start -> end, printing and checking every parameter."""

    greeting = Parameter("greeting", default="hello", help="A string.")
    epochs = Parameter("epochs", default=3, help="An int (inferred from the default).")
    alpha = Parameter("alpha", default=0.5, help="A float (inferred from the default).")
    verbose = Parameter("verbose", default=False, type=bool, help="A bool.")
    hyperparams = Parameter(
        "hyperparams",
        type=JSONType,
        default='{"layers": [64, 32], "dropout": 0.1}',
        help="A JSON document.",
    )
    label = Parameter("label", default=default_label, help="Default computed at run start.")
    colors = Parameter("colors", default="red,green,blue", separator=",", help="A comma-separated list.")
    notes = IncludeFile("notes", default=NOTES, help="A text file stored with the run.")

    @step
    def start(self):
        assert isinstance(self.greeting, str)
        assert isinstance(self.epochs, int)
        assert isinstance(self.alpha, float)
        assert isinstance(self.verbose, bool)
        assert isinstance(self.hyperparams, dict)
        assert isinstance(self.colors, list)
        assert isinstance(self.notes, str)
        print(f"{self.greeting}! epochs={self.epochs} alpha={self.alpha} verbose={self.verbose}")
        print(f"hyperparams={self.hyperparams} label={self.label!r} colors={self.colors}")
        print(f"notes: {len(self.notes.splitlines())} lines, first: {self.notes.splitlines()[0]!r}")
        try:
            self.epochs = 100
        except AttributeError:
            print("parameters are read-only inside steps, as expected")
        else:
            raise AssertionError("a parameter was assignable")
        self.schedule = [self.alpha / (i + 1) for i in range(self.epochs)]
        self.next(self.end)

    @step
    def end(self):
        # Parameters are visible in every step, not just start.
        assert len(self.schedule) == self.epochs
        print(f"{current.flow_name} run {current.run_id}: label={self.label}, "
              f"{len(self.hyperparams['layers'])} layers, {len(self.colors)} colors")


if __name__ == "__main__":
    ParametersFlow()
