"""A task whose node is killed while it runs; @retry runs it again elsewhere (Ray launcher tests)."""

import json
import os
import time

from headwater import FlowSpec, Parameter, current, resources, retry, step


class RayNodeLossFlow(FlowSpec):
    marker = Parameter("marker", help="file attempt 0 writes once it runs")
    hold = Parameter("hold", default=120.0, type=float, help="seconds attempt 0 runs after writing the marker")

    @step
    def start(self):
        self.next(self.fragile)

    @retry(times=1)
    @resources(cpu=1, memory=150000)
    @step
    def fragile(self):
        import ray

        self.node = ray.get_runtime_context().get_node_id()
        self.attempt = current.retry_count
        marker = self.marker
        if current.retry_count == 0:
            with open(marker + ".tmp", "w") as f:
                json.dump({"node": self.node, "ip": ray.util.get_node_ip_address()}, f)
            os.rename(marker + ".tmp", marker)
            time.sleep(self.hold)  # the test kills this node (or the run) meanwhile
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    RayNodeLossFlow()
