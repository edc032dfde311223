"""A step that refreshes its card, then waits for a gate file before it finishes."""
import os
import time

from headwater import FlowSpec, card, current, step
from headwater.cards import ProgressBar


class LiveCardFlow(FlowSpec):
    @card(refresh_interval=0)
    @step
    def start(self):
        bar = ProgressBar(max=2, label="halfway there")
        current.card.append(bar)
        bar.update(1)
        current.card.refresh()
        gate = os.environ["HW_TEST_GATE"]
        deadline = time.time() + 60
        while not os.path.exists(gate) and time.time() < deadline:
            time.sleep(0.05)
        bar.update(2, metadata="done")
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    LiveCardFlow()
