"""@trigger on two events, each setting a parameter from a payload field (Argo Events Sensor)."""
from headwater import FlowSpec, JSONType, Parameter, step, trigger


@trigger(events=[{"name": "data.ready", "parameters": {"table": "table_name"}},
                 {"name": "model-updated", "parameters": [("config", "cfg"), "Threshold"]}],
         options={"reset_at": {"cron": "0 0 * * *", "timezone": "UTC"}})
class TriggerFlow(FlowSpec):
    table = Parameter("table", default="raw")
    config = Parameter("config", type=JSONType, default={"k": 1})
    threshold = Parameter("Threshold", default=0.5)
    untouched = Parameter("untouched", default=7)

    @step
    def start(self):
        self.seen = (self.table, self.config, self.threshold, self.untouched)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    TriggerFlow()
