"""@trigger_on_finish under @project: one upstream in this flow's branch, one named fully."""
from headwater import FlowSpec, project, step, trigger_on_finish


@project(name="demoproj")
@trigger_on_finish(flows=["TrainFlow", "otherproj.prod.FeatureFlow"])
class ScoreFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ScoreFlow()
