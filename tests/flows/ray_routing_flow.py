"""@ray_task on chosen steps; the local start step deletes the flow's files (Ray launcher tests).

The Ray steps can then only import the flow (and ``ray_helper``) from the run's
code package: proof that workers never read the head's copy.
"""

import os

import ray_helper

from headwater import FlowSpec, ray_task, step


class RayRoutingFlow(FlowSpec):
    @step
    def start(self):
        self.start_pid = os.getpid()
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
        self.next(self.end)

    @step
    def end(self):
        self.end_pid = os.getpid()


if __name__ == "__main__":
    RayRoutingFlow()
