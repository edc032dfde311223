"""A scheduled flow: deploying it makes a CronWorkflow beside the WorkflowTemplate."""
from headwater import FlowSpec, schedule, step


@schedule(daily=True)
class ArgoScheduledFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ArgoScheduledFlow()
