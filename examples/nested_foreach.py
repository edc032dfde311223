"""NestedForeachFlow: a foreach inside a foreach (a 2-level grid search).

What it shows:
  * an outer foreach over models, and in each model task an inner foreach over
    learning rates: 3 models x 4 rates = 12 ``train`` tasks;
  * every foreach must be closed by its own join, innermost first:
    ``pick_rate`` joins the inner level (one join task per model), then
    ``pick_model`` joins the outer level;
  * ``self.input`` is the element of the innermost enclosing foreach; an outer
    element you still need later must be saved as an artifact (``self.model``);
  * join inputs arrive in index order at both levels.

Run it:
    python examples/nested_foreach.py run
"""

from headwater import FlowSpec, step

# A made-up loss surface: each model has a best learning rate.
_BEST_RATE = {"small": 0.1, "medium": 0.03, "large": 0.01}


class NestedForeachFlow(FlowSpec):
    """start -> per_model (x3) -> train (x4 each) -> pick_rate -> pick_model -> end."""

    @step
    def start(self):
        self.models = ["small", "medium", "large"]
        self.rates = [0.3, 0.1, 0.03, 0.01]
        self.next(self.per_model, foreach="models")

    @step
    def per_model(self):
        self.model = self.input  # keep the outer element: self.input changes below
        self.next(self.train, foreach="rates")

    @step
    def train(self):
        self.rate = self.input
        self.loss = abs(self.rate - _BEST_RATE[self.model]) + 0.001 * len(self.model)
        self.next(self.pick_rate)

    @step
    def pick_rate(self, inputs):
        # One join task per model; inputs are that model's 4 train tasks, in order.
        losses = [inp.loss for inp in inputs]
        assert [inp.rate for inp in inputs] == inputs[0].rates
        best = min(range(len(losses)), key=losses.__getitem__)
        self.model = inputs[0].model
        self.best_rate = inputs[best].rate
        self.best_loss = losses[best]
        self.next(self.pick_model)

    @step
    def pick_model(self, inputs):
        self.results = {inp.model: (inp.best_rate, inp.best_loss) for inp in inputs}
        assert list(self.results) == ["small", "medium", "large"]
        self.winner = min(self.results, key=lambda m: self.results[m][1])
        self.next(self.end)

    @step
    def end(self):
        for model, (rate, loss) in self.results.items():
            assert rate == _BEST_RATE[model]
            print(f"{model:>6}: best rate {rate:<5} loss {loss:.4f}")
        print("winner:", self.winner)


if __name__ == "__main__":
    NestedForeachFlow()
