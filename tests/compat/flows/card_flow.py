"""Steps with cards: a default card, and two cards with ids (compat fixture)."""

from metaflow import FlowSpec, card, current, step
from metaflow.cards import Markdown


class CardFlow(FlowSpec):
    """Cards on start; none on end."""

    @card
    @card(type="blank", id="notes")
    @step
    def start(self):
        self.value = 42
        current.card["notes"].append(Markdown("# Notes"))
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    CardFlow()
