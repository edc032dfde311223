"""Cards: the default card with artifacts, a foreach with a live-refreshed blank card,
several cards with ids on one step, a custom card type, a failing card and a failing component."""
import struct
import zlib

from headwater import FlowSpec, Parameter, card, current, step
from headwater.cards import HeadwaterCard, Markdown, MetaflowCardComponent, ProgressBar, Table, get_cards


def tiny_png(width=4, height=3):
    """A real PNG of solid red pixels, made with the standard library."""
    raw = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


class SummaryCard(HeadwaterCard):
    """A custom card type, registered by subclassing."""

    type = "summary_test"

    def render(self, task):
        return self.html_page(f'<p id="summary">total={task.data.total} from {task.pathspec}</p>',
                              title=f"Summary ({self.options.get('tone', 'plain')})")


class BrokenCard(HeadwaterCard):
    type = "broken_test"

    def render(self, task):
        raise RuntimeError("this card always breaks")


class Exploding(MetaflowCardComponent):
    def render(self):
        raise ValueError("component exploded")


def live_text(card_id=None):
    """The live card of this task as the client sees it while the step runs."""
    cards = get_cards(current.pathspec, id=card_id)
    return [(c.live, c.get()) for c in cards]


class CardFlow(FlowSpec):
    """A flow that renders cards."""

    alpha = Parameter("alpha", default=0.25, type=float, help="A float parameter")
    label = Parameter("label", default="demo", help="A string parameter")

    @card
    @step
    def start(self):
        """Make artifacts of many kinds."""
        import numpy as np

        self.count = 42
        self.words = "a short string"
        self.long_text = "line of text\n" * 500
        self.long_list = list(range(5000))
        self.config = {"layers": [64, 32], "activation": "relu", "nested": {"deep": True}}
        self.matrix = np.arange(600, dtype=np.float32).reshape(200, 3)
        self.png = tiny_png()
        try:
            import pandas as pd

            self.frame = pd.DataFrame({"city": ["Oslo", "Lima", "Pune"], "temp": [3.5, 19.25, 31.0]})
        except ImportError:
            pass
        current.card.append(Markdown("# Start notes\nThe **alpha** is used <b>everywhere</b>."))
        current.card.append(Table([[1, Markdown("*one*")], [2, "two"]], headers=["n", "name"]))
        self.items = [1, 2, 3]
        self.next(self.train, foreach="items")

    @card(type="blank", refresh_interval=1000)
    @step
    def train(self):
        bar = ProgressBar(max=3, label="epochs")
        current.card.append(bar)
        snapshots = []
        for i in range(3):
            bar.update(i + 1)
            # 1st: renders; 2nd: within refresh_interval, skipped; 3rd: forced.
            current.card.refresh(force=(i == 2))
            snapshots.append(live_text())
        self.snapshots = snapshots
        self.value = self.input * 10
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(i.value for i in inputs)
        self.next(self.end)

    @card(type="default", id="main")
    @card(type="blank", id="extra")
    @card(type="summary_test", id="summary", options={"tone": "cheerful"})
    @card(type="broken_test")
    @step
    def end(self):
        current.card["extra"].append(Markdown("extra card"))
        current.card["extra"].append(Exploding())
        current.card["extra"].append(Markdown("after the explosion"))
        current.card["main"].append(Markdown("main card"), id="note")
        current.card["main"].components["note"].update("main card, updated")
        current.card.append(Markdown("goes nowhere"))
        current.card["nope"].append(Markdown("nowhere either"))


if __name__ == "__main__":
    CardFlow()
