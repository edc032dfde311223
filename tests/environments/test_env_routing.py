"""Steps with a built environment go to a subprocess launcher; never to Ray or Kubernetes (yet)."""

from __future__ import annotations

import pytest

from headwater import FlowSpec, ray_task, step
from headwater.environments.base import EnvKind
from headwater.environments.prepare import PreparedEnvironments, StepEnvironment
from headwater.runtime.launchers import TaskContext, make_launcher
from headwater.runtime.launchers.routing import LauncherConflictError, RoutingLauncher
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


def test_an_environment_step_on_ray_is_refused() -> None:
    with pytest.raises(LauncherConflictError, match=r"Step 'remote' runs in a Python environment .* and on ray"):
        make_launcher("fork", _ctx("remote"))
    with pytest.raises(LauncherConflictError, match=r"Step 'start' runs in a Python environment .* and on "
                                                    r"kubernetes .*HEADWATER_LAUNCHER=kubernetes"):
        make_launcher("kubernetes", _ctx("start"))
