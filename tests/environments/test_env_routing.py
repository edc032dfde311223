"""Local steps with a built environment go to a subprocess launcher; steps on Ray or Kubernetes stay
there (the node or pod builds the environment: tests/runtime/test_ray_launcher.py, test_kubernetes_launcher.py)."""

from __future__ import annotations

from headwater import FlowSpec, ray_task, step
from headwater.environments.base import EnvKind
from headwater.environments.prepare import PreparedEnvironments, StepEnvironment
from headwater.runtime.launchers import TaskContext, make_launcher
from headwater.runtime.launchers.routing import RoutingLauncher
from headwater.runtime.launchers.subprocess import SubprocessLauncher


class RoutedFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.remote)

    @ray_task
    @step
    def remote(self):
        self.next(self.end)

    @step
    def end(self):
        pass


def _ctx(*steps: str) -> TaskContext:
    env = StepEnvironment(EnvKind.PYPI, "d" * 64, "/envs/d/bin/python", {"tinylib": "1.0.0"})
    prepared = PreparedEnvironments(dict.fromkeys(steps, env), {}, "/envs/.shims/x")
    return TaskContext(RoutedFlow, RoutedFlow._graph, "/tmp/store", "flow.py", environments=prepared)


def test_environment_steps_run_in_a_subprocess_launcher() -> None:
    launcher = make_launcher("fork", _ctx("start", "end"))
    assert isinstance(launcher, RoutingLauncher)
    assert isinstance(launcher.for_step("start"), SubprocessLauncher)
    assert launcher.for_step("end") is launcher.for_step("start")
    assert launcher.for_step("remote").name == "ray"
    launcher.shutdown()


def test_the_subprocess_launcher_runs_every_step_itself() -> None:
    class Plain(FlowSpec):
        @step
        def start(self):
            self.next(self.end)

        @step
        def end(self):
            pass

    env = StepEnvironment(EnvKind.PYPI, "d" * 64, "/envs/d/bin/python")
    ctx = TaskContext(Plain, Plain._graph, "/tmp/store", "flow.py",
                      environments=PreparedEnvironments({"start": env}, {}, None))
    launcher = make_launcher("subprocess", ctx)
    assert isinstance(launcher, SubprocessLauncher)
    launcher.shutdown()


def test_an_environment_step_on_ray_stays_on_ray() -> None:
    launcher = make_launcher("fork", _ctx("start", "remote"))
    assert isinstance(launcher, RoutingLauncher)
    assert launcher.for_step("remote").name == "ray"  # not the subprocess launcher: the node builds it
    assert isinstance(launcher.for_step("start"), SubprocessLauncher)
    launcher.shutdown()


def test_every_step_on_a_backend_stays_there() -> None:
    launcher = make_launcher("ray", _ctx("start", "remote"))
    assert launcher.name == "ray"
    launcher.shutdown()
