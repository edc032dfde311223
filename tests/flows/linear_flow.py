"""Linear flow: artifacts, _private artifacts, class constants, current."""
from headwater import FlowSpec, current, step


class LinearFlow(FlowSpec):
    """A three-step linear flow."""

    MULTIPLIER = 3

    @step
    def start(self):
        """Set some artifacts."""
        self.x = 2
        self._secret = "hidden"
        self.info = {
            "flow_name": current.flow_name, "run_id": current.run_id, "step_name": current.step_name,
            "task_id": current.task_id, "retry_count": current.retry_count,
            "origin_run_id": current.origin_run_id, "pathspec": current.pathspec,
            "is_running_flow": current.is_running_flow, "namespace": current.namespace,
            "username": current.username, "parameter_names": current.parameter_names,
            "graph_start": current.graph["start"], "tempdir": current.tempdir,
        }
        print("hello from start")
        self.next(self.middle)

    @step
    def middle(self):
        self.y = self.x * self.MULTIPLIER
        self.secret_seen = self._secret
        self.next(self.end)

    @step
    def end(self):
        self.z = self.y + 1


if __name__ == "__main__":
    LinearFlow()
