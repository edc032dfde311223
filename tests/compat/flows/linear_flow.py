"""Linear flow: artifacts, a _private artifact, a class constant, current (compat fixture)."""

from metaflow import FlowSpec, current, step


class LinearFlow(FlowSpec):
    """A three-step linear flow."""

    MULTIPLIER = 3

    @step
    def start(self):
        """Set some artifacts."""
        self.x = 2
        self._secret = "hidden"
        self.nested = {"a": [1, 2.5, None, True], "b": ("t", "u")}
        self.blob = b"\x00\x01"
        self.info = {
            "flow_name": current.flow_name, "step_name": current.step_name,
            "retry_count": current.retry_count, "origin_run_id": current.origin_run_id,
            "is_running_flow": current.is_running_flow, "namespace": current.namespace,
            "username": current.username, "parameter_names": current.parameter_names,
            "pathspec_parts": len(current.pathspec.split("/")),
            "run_id_matches": current.run_id == current.pathspec.split("/")[1],
        }
        print("hello from start")
        self.next(self.middle)

    @step
    def middle(self):
        self.y = self.x * self.MULTIPLIER
        self.secret_seen = self._secret
        print("to stderr", file=__import__("sys").stderr)
        self.next(self.end)

    @step
    def end(self):
        self.z = self.y + 1


if __name__ == "__main__":
    LinearFlow()
