"""CardsFlow: a report of a step, rendered as a self-contained HTML card.

What it shows:
  * ``@card`` on a step renders a card for each of its tasks: task info,
    parameters, artifacts (with readable previews) and the flow's graph;
  * ``current.card.append(...)`` adds components (Markdown, ProgressBar,
    VegaChart, Table, ...) to the card;
  * ``current.card.refresh()`` re-renders the card while the step runs, so a
    long step can be watched (``python cards.py card view RUN/train``);
  * cards are read back with ``python cards.py card get|view|list`` or
    ``headwater.cards.get_cards(task)``.

Run it:
    python examples/cards.py run
    python examples/cards.py card list
    python examples/cards.py card view <run-id>/train
"""

from headwater import FlowSpec, Parameter, card, current, step
from headwater.cards import Markdown, ProgressBar, Table, ValueBox, VegaChart


class CardsFlow(FlowSpec):
    """Fit a toy model and report on it with a card."""

    epochs = Parameter("epochs", default=12, help="Training epochs")
    rate = Parameter("rate", default=0.25, type=float, help="Learning rate")

    @step
    def start(self):
        """Make the data."""
        self.points = [(x / 10, 3 * x / 10 + 1) for x in range(50)]
        self.next(self.train)

    @card(refresh_interval=1)
    @step
    def train(self):
        """Fit y = a*x + b by gradient descent, showing progress live."""
        current.card.append(Markdown(f"# Training\nGradient descent on {len(self.points)} points, "
                                     f"**{self.epochs} epochs** at learning rate `{self.rate}`."))
        bar = ProgressBar(max=self.epochs, label="Epochs")
        current.card.append(bar)
        a = b = 0.0
        self.history = []
        for epoch in range(1, self.epochs + 1):
            n = len(self.points)
            grad_a = sum(2 * (a * x + b - y) * x for x, y in self.points) / n
            grad_b = sum(2 * (a * x + b - y) for x, y in self.points) / n
            a, b = a - self.rate * grad_a / 10, b - self.rate * grad_b
            loss = sum((a * x + b - y) ** 2 for x, y in self.points) / n
            self.history.append({"epoch": epoch, "loss": round(loss, 4)})
            bar.update(epoch, metadata=f"loss {loss:.4f}")
            current.card.refresh()
        self.a, self.b = round(a, 4), round(b, 4)
        current.card.append(ValueBox(title="Final loss", value=round(loss, 4), subtitle=f"after {self.epochs} epochs",
                                     theme="success"))
        current.card.append(VegaChart({
            "title": "Training loss", "width": 520, "height": 220, "data": {"values": self.history},
            "mark": {"type": "line", "point": True},
            "encoding": {"x": {"field": "epoch", "type": "quantitative"},
                         "y": {"field": "loss", "type": "quantitative", "scale": {"type": "log"}}},
        }))
        current.card.append(Table([[h["epoch"], h["loss"]] for h in self.history[-5:]], headers=["epoch", "loss"]))
        self.next(self.end)

    @step
    def end(self):
        """Report the fit."""
        print(f"fitted y = {self.a}x + {self.b}")


if __name__ == "__main__":
    CardsFlow()
