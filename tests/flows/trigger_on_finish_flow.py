"""@trigger_on_finish under @project: one upstream in this flow's branch, one named fully;
current.trigger from --trigger locally."""
from headwater import FlowSpec, current, project, step, trigger_on_finish


@project(name="demoproj")
@trigger_on_finish(flows=["TrainFlow", "otherproj.prod.FeatureFlow"])
class ScoreFlow(FlowSpec):
    @step
    def start(self):
        trigger = current.get("trigger")  # a deployed run's upstream runs, or --trigger locally
        self.upstream = trigger.run.pathspec if trigger else None
        self.events = [e.name for e in trigger.events] if trigger else None
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ScoreFlow()
