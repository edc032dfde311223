"""How @pypi/@conda and their _base forms combine into each step's EnvRequest (a pure function)."""

from __future__ import annotations

import pytest

from headwater import FlowSpec, conda, conda_base, pypi, pypi_base, step
from headwater.environments.base import DecoratorConflict, EnvKind, EnvRequest
from headwater.flow.decorators import InvalidDecoratorAttribute
from headwater.flow.environment_decorators import EnvironmentNotEnabled, step_env_requests


@pypi_base(packages={"tinylib": "1.0", "other": ">=2"}, python="3.11")
class BaseFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.override)

    @pypi(packages={"tinylib": "2.0"}, python="3.12")
    @step
    def override(self):
        self.next(self.off)

    @pypi(disabled=True)
    @step
    def off(self):
        self.next(self.end)

    @step
    def end(self):
        pass


@conda_base(python="3.10")
class MixedFlow(FlowSpec):
    @pypi(packages={"tinylib": "1.0"})
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


@pypi_base(packages={"tinylib": "1.0"})
@conda_base(packages={"numpy": "1.26"})
class BothBasesFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


def _requests(flow: type, environment: str = "pypi") -> dict[str, EnvRequest | None]:
    return step_env_requests(flow, flow._graph.sorted_nodes, environment, project_dir="/proj")


def test_step_packages_are_added_to_the_bases_and_override_them() -> None:
    got = _requests(BaseFlow)
    assert got["start"] == EnvRequest(EnvKind.PYPI, python="3.11", packages=(("other", ">=2"), ("tinylib", "1.0")))
    assert got["override"] == EnvRequest(EnvKind.PYPI, python="3.12",
                                         packages=(("other", ">=2"), ("tinylib", "2.0")))
    assert got["end"] == got["start"]


def test_a_disabled_step_runs_without_an_environment() -> None:
    assert _requests(BaseFlow)["off"] is None


def test_conda_and_pypi_environments_are_the_same_for_the_decorators() -> None:
    assert _requests(BaseFlow, "conda") == _requests(BaseFlow, "pypi")


def test_pypi_packages_take_the_python_of_conda_base() -> None:
    got = _requests(MixedFlow)
    assert got["start"] == EnvRequest(EnvKind.PYPI, python="3.10", packages=(("tinylib", "1.0"),))
    assert got["end"] == EnvRequest(EnvKind.CONDA, python="3.10")


def test_pypi_base_with_conda_base_is_a_conflict() -> None:
    with pytest.raises(DecoratorConflict, match=r"Flow 'BothBasesFlow' has both @pypi_base and @conda_base"):
        _requests(BothBasesFlow)


@pytest.mark.parametrize("environment", ["local", "uv"])
def test_the_decorators_need_the_pypi_or_conda_environment(environment: str) -> None:
    with pytest.raises(EnvironmentNotEnabled, match=rf"@pypi_base on the flow requires --environment=pypi or "
                                                    rf"--environment=conda \(this run has --environment={environment}\)"):
        _requests(BaseFlow, environment)


class PlainFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


def test_uv_runs_every_step_in_the_project() -> None:
    assert _requests(PlainFlow, "uv") == dict.fromkeys(["start", "end"], EnvRequest(EnvKind.UV, project="/proj"))
    assert _requests(PlainFlow, "local") == {"start": None, "end": None}
    assert _requests(PlainFlow, "pypi") == {"start": None, "end": None}


def test_packages_must_be_a_dict() -> None:
    class BadFlow(FlowSpec):
        @conda(packages=["numpy"])
        @step
        def start(self):
            self.next(self.end)

        @step
        def end(self):
            pass

    with pytest.raises(InvalidDecoratorAttribute, match=r"@conda\(packages=\['numpy'\]\): packages must be a dict"):
        _requests(BadFlow)
