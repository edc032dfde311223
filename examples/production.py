"""ProductionFlow: a nightly forecasting pipeline, written to be deployed (docs/production.md).

What it shows:
  * ``@project``: deployments are named per branch (``--branch``, ``--production``);
  * ``@schedule`` and ``@trigger``: it runs every night, and also when an event
    ``sales.landed`` is published (its payload field ``day`` sets the parameter);
  * a foreach over regions with a nested foreach over models, a switch that publishes
    or holds back the forecast, ``@retry`` for a flaky load, ``@catch`` around an
    optional report, ``@timeout`` and ``@resources`` for the training step.

Run it here, deploy it there (a trigger needs the cluster's Argo Events settings:
HEADWATER_ARGO_EVENTS_EVENT, _EVENT_SOURCE and _SERVICE_ACCOUNT; see docs/argo.md):
    python examples/production.py run
    python examples/production.py --datastore=s3 argo-workflows create --only-json
"""

from headwater import (FlowSpec, Parameter, catch, current, project, resources, retry, schedule, step, timeout,
                       trigger)

# A made-up error per model and region: the pipeline picks the best model of each region.
_ERROR = {("north", "linear"): 0.21, ("north", "boosted"): 0.12,
          ("south", "linear"): 0.08, ("south", "boosted"): 0.11}


@project(name="forecasting")
@schedule(cron="0 3 * * *")
@trigger(event={"name": "sales.landed", "parameters": {"day": "day"}})
class ProductionFlow(FlowSpec):
    """start -> load (per region) -> train (per model) -> pick_model -> pick_region -> decide -> publish|hold -> report -> end."""

    day = Parameter("day", default="2026-11-30", help="The day whose sales to forecast from.")
    max_error = Parameter("max_error", default=0.15, help="Publish only forecasts at most this wrong.")

    @step
    def start(self):
        self.regions = ["north", "south"]
        self.next(self.load, foreach="regions")

    @retry(times=2, minutes_between_retries=0)
    @step
    def load(self):
        self.region = self.input
        self.rows = 1000 if self.region == "north" else 800  # stands in for reading the day's sales
        self.models = ["linear", "boosted"]
        self.next(self.train, foreach="models")

    @timeout(minutes=30)
    @resources(cpu=2, memory=4096)
    @step
    def train(self):
        self.model = self.input
        self.error = _ERROR[(self.region, self.model)]
        self.next(self.pick_model)

    @step
    def pick_model(self, inputs):
        best = min(inputs, key=lambda i: i.error)
        self.region, self.model, self.error = best.region, best.model, best.error
        self.next(self.pick_region)

    @step
    def pick_region(self, inputs):
        self.forecasts = {i.region: (i.model, i.error) for i in inputs}
        self.next(self.decide)

    @step
    def decide(self):
        worst = max(error for _, error in self.forecasts.values())
        self.decision = "publish" if worst <= self.max_error else "hold"
        self.next({"publish": self.publish, "hold": self.hold}, condition="decision")

    @step
    def publish(self):
        self.published = sorted(self.forecasts)
        self.next(self.report)

    @step
    def hold(self):
        self.published = []
        self.next(self.report)

    @catch(var="report_failure")
    @step
    def report(self):
        self.summary = f"{self.day}: {len(self.published)} regions published ({current.project_name})"
        self.next(self.end)

    @step
    def end(self):
        print(self.summary)


if __name__ == "__main__":
    ProductionFlow()
