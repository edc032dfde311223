"""BranchFlow: a static split into three parallel branches and a join.

What it shows:
  * ``self.next(self.a, self.b, self.c)`` starts three branches that run in
    parallel, each in its own task, each with its own copy of the artifacts;
  * a *join* step takes a second argument, ``inputs``: one entry per incoming
    branch, reachable by step name (``inputs.fit_linear``) or by iteration;
  * ``self.merge_artifacts(inputs, ...)`` carries over every artifact the
    branches agree on (here ``dataset`` and ``seed``, untouched since ``start``),
    so the join only has to decide what to do with the ones that differ.
    ``exclude=[...]`` lists artifacts that differ and are resolved by hand;
    without it, a conflicting artifact is an error.

Run it:
    python examples/branch.py run
"""

from headwater import FlowSpec, step


class BranchFlow(FlowSpec):
    """start -> (fit_linear | fit_quadratic | fit_constant) -> choose -> end."""

    @step
    def start(self):
        # A tiny "dataset": y = 2x + 1 with no noise.
        self.seed = 42
        self.dataset = [(x, 2 * x + 1) for x in range(10)]
        self.next(self.fit_linear, self.fit_quadratic, self.fit_constant)

    @step
    def fit_linear(self):
        self.model = "linear"
        self.error = _sse(self.dataset, lambda x: 2 * x + 1)
        self.next(self.choose)

    @step
    def fit_quadratic(self):
        self.model = "quadratic"
        self.error = _sse(self.dataset, lambda x: 0.1 * x * x + 1.1 * x + 2)
        self.next(self.choose)

    @step
    def fit_constant(self):
        self.model = "constant"
        mean = sum(y for _, y in self.dataset) / len(self.dataset)
        self.error = _sse(self.dataset, lambda x: mean)
        self.next(self.choose)

    @step
    def choose(self, inputs):
        # Named access: each branch's artifacts, by step name.
        print("linear fit error:", inputs.fit_linear.error)
        # Iteration: every branch (do not rely on the order).
        scores = {inp.model: inp.error for inp in inputs}
        self.scores = scores
        self.best_model = min(scores, key=scores.get)
        # `dataset` and `seed` are identical in all branches: merge them.
        # `model` and `error` differ and were handled above: exclude them.
        self.merge_artifacts(inputs, exclude=["model", "error"])
        self.next(self.end)

    @step
    def end(self):
        assert self.best_model == "linear"
        assert self.seed == 42 and len(self.dataset) == 10
        print("best model:", self.best_model, "scores:", self.scores)


def _sse(data, f):
    """Sum of squared errors of `f` over `data`."""
    return sum((f(x) - y) ** 2 for x, y in data)


if __name__ == "__main__":
    BranchFlow()
