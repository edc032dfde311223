"""Cards of a failing step (and a card that times out); resumable once HW_CARD_FAIL is unset."""
import os
import time

from headwater import FlowSpec, card, current, step
from headwater.cards import HeadwaterCard, Markdown


class SlowCard(HeadwaterCard):
    type = "slow_test"

    def render(self, task):
        time.sleep(20)
        return "<p>too late</p>"


class CardFailFlow(FlowSpec):
    @card
    @step
    def start(self):
        current.card.append(Markdown("from the start step"))
        self.x = 1
        self.next(self.middle)

    @card(type="default", customize=True)
    @card(type="slow_test", timeout=1)
    @step
    def middle(self):
        current.card.append(Markdown("written before the failure"))
        if os.environ.get("HW_CARD_FAIL") == "1":
            raise ValueError("the step failed on purpose")
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    CardFailFlow()
