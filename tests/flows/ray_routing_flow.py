"""@ray_task on chosen steps; the local start step deletes the flow's files (Ray launcher tests).

The Ray steps can then only import the flow (and ``ray_helper``) from the run's
code package: proof that workers never read the head's copy.
"""

import os

import ray_helper

from headwater import FlowSpec, ray_task, step


class Point:
    """A class of the flow file: the head pickles it as ``__main__.Point``."""

    def __init__(self, x, y):
        self.x, self.y = x, y


class RayRoutingFlow(FlowSpec):
    @step
    def start(self):
        self.start_pid = os.getpid()
        self.point = Point(1, 2)
        here = os.path.dirname(os.path.abspath(__file__))
        if os.environ.get("RAY_TEST_DELETE_SOURCES"):
            for name in ("ray_routing_flow.py", "ray_helper.py"):
                os.remove(os.path.join(here, name))
        self.next(self.remote)

    @ray_task
    @step
    def remote(self):
        import ray

        self.node = ray.get_runtime_context().get_node_id()
        self.flow_file = os.path.abspath(__file__)
        self.helper = ray_helper.greeting("ray")
        self.worker_pid = os.getpid()
        self.moved = Point(self.point.x + 10, self.point.y + 10)  # read from the head, stored for it
        self.next(self.end)

    @step
    def end(self):
        self.end_pid = os.getpid()
        self.moved_sum = self.moved.x + self.moved.y


if __name__ == "__main__":
    RayRoutingFlow()
