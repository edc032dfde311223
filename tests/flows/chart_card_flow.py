"""A card with a Vega-Lite chart, value boxes and a table (checked in headless Chromium)."""
from headwater import FlowSpec, card, current, step
from headwater.cards import Markdown, Table, ValueBox, VegaChart

RESULTS = [["alpha", 0.91, 120], ["beta", 0.87, 95], ["gamma", 0.78, 143], ["delta", 0.95, 88]]


class ChartCardFlow(FlowSpec):
    """Compare four models."""

    @card(type="blank", options={"title": "Model comparison"})
    @step
    def start(self):
        self.results = RESULTS
        best = max(RESULTS, key=lambda r: r[1])
        current.card.append(Markdown("Four models scored on the **validation set**."))
        current.card.append(ValueBox(title="Best accuracy", value=best[1], subtitle=best[0], theme="success",
                                     change_indicator="+4.4%"))
        current.card.append(ValueBox(title="Fastest", value=f"{min(r[2] for r in RESULTS)} ms", subtitle="delta"))
        spec = {
            "title": "Accuracy by model", "width": 520, "height": 260,
            "data": {"values": [{"model": m, "accuracy": a} for m, a, _ in RESULTS]},
            "mark": {"type": "bar", "cornerRadiusEnd": 3},
            "encoding": {
                "x": {"field": "model", "type": "nominal", "sort": "-y", "axis": {"labelAngle": 0}},
                "y": {"field": "accuracy", "type": "quantitative", "scale": {"domain": [0, 1]}},
                "color": {"field": "model", "type": "nominal", "legend": None},
            },
        }
        current.card.append(VegaChart(spec))
        current.card.append(Table(RESULTS, headers=["model", "accuracy", "latency (ms)"]))
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ChartCardFlow()
