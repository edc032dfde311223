"""``@pypi``, ``@pypi_base``, ``@conda``, ``@conda_base``: the Python environment a step runs in
(authoring layer).

The decorators only hold Metaflow's attributes. ``step_env_requests`` turns a flow's decorators
and ``--environment`` into one ``EnvRequest`` per step (or ``None``: the step runs in the
launching interpreter), with Metaflow's rules for combining the step and flow levels:

- a step's ``packages`` are added to (and override) its flow-level ``_base`` decorator's;
- ``python`` is the step's, else the flow's; ``disabled`` is the step's when given, else the
  flow's, and a disabled step runs without an environment;
- the decorators take effect only with ``--environment=pypi`` or ``--environment=conda`` (the
  two are one in Metaflow: the decorator picks the tool); with any other environment they are an
  error, as in Metaflow;
- PyPI and conda packages on one step (or ``@pypi_base`` and ``@conda_base`` on one flow) are a
  ``DecoratorConflict``.

``--environment=uv`` runs every step in the flow directory's uv project (``pyproject.toml`` and
``uv.lock``). Unlike Metaflow, a step without any environment decorator runs in the launching
environment rather than in an empty one (no environment to build for it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..environments.base import DecoratorConflict, EnvKind, EnvRequest, StepEnvironmentError
from ..environments.kinds import ExecutionEnvironment
from .decorators import InvalidDecoratorAttribute, StepDecorator, _make
from .flow_decorators import FlowDecorator, flow_decorators, make_flow_decorator


#: The ``--environment`` values under which ``@pypi``/``@conda`` take effect (Metaflow's rule).
DECORATOR_ENVIRONMENTS = (ExecutionEnvironment.PYPI, ExecutionEnvironment.CONDA)
#: The step decorators of this module and the kind of environment each asks for.
STEP_KINDS = {"pypi": EnvKind.PYPI, "conda": EnvKind.CONDA}
#: Each step decorator's flow-level form.
BASE_OF = {"pypi": "pypi_base", "conda": "conda_base"}


class EnvironmentNotEnabled(StepEnvironmentError):
    """An environment decorator is used without ``--environment=pypi`` or ``--environment=conda``."""

    headline = "Incompatible environment"


def _check_mapping(deco: Any, attr: str) -> None:
    packages = deco.attributes[attr]
    if packages is None:
        deco.attributes[attr] = {}
    elif not isinstance(packages, Mapping) or not all(isinstance(k, str) and k for k in packages):
        raise InvalidDecoratorAttribute(
            f"@{deco.name}({attr}={packages!r}): {attr} must be a dict of package names to versions.",
            hint=f'e.g. @{deco.name}({attr}={{"pandas": "2.2.2", "requests": ">=2.31"}})')


def _check(deco: Any) -> None:
    a = deco.attributes
    packages = a["packages"]
    for name, version in packages.items():
        if version is not None and not isinstance(version, (str, int, float)):
            raise InvalidDecoratorAttribute(
                f"@{deco.name}(packages=...): the version of {name!r} must be a string, not {version!r}.",
                hint='Write the version as a string: "1.2.3", ">=1.2" or "" for any.')
    a["packages"] = {str(k): "" if v is None else str(v) for k, v in packages.items()}
    if a["python"] is not None and not isinstance(a["python"], str):
        a["python"] = str(a["python"])


class _EnvDecoratorMixin:
    """Validation shared by the four decorators (``libraries`` is conda's old name for ``packages``)."""

    def init(self) -> None:
        a = self.attributes  # type: ignore[attr-defined]
        _check_mapping(self, "packages")
        if "libraries" in a:
            _check_mapping(self, "libraries")
            a["packages"] = {**a["libraries"], **a["packages"]}
            a["libraries"] = {}
        _check(self)


class PypiDecorator(_EnvDecoratorMixin, StepDecorator):
    """Run this step in an environment with these PyPI packages (needs ``--environment=pypi``).

    Parameters
    ----------
    packages : dict, default {}
        Package name -> version (``"2.2.2"`` means ``==2.2.2``; ``">=2"``, ``"~=1.4"`` and ``""``
        are used as written). Added to, and overriding, ``@pypi_base``'s.
    python : str, optional
        The Python version, e.g. ``"3.11"``; default ``@pypi_base``'s, else the launching one.
    disabled : bool, optional
        Run this step without an environment.

    Examples
    --------
    >>> @pypi(packages={"pandas": "2.2.2"})  # doctest: +SKIP
    ... @step
    ... def start(self): ...
    """

    name = "pypi"
    defaults: dict[str, Any] = {"packages": {}, "python": None, "disabled": None}


class CondaDecorator(_EnvDecoratorMixin, StepDecorator):
    """Run this step in a conda environment with these packages (needs ``--environment=conda``).

    Parameters
    ----------
    packages : dict, default {}
        Package name -> conda version spec; added to, and overriding, ``@conda_base``'s.
    libraries : dict, default {}
        Metaflow's older name for ``packages`` (``packages`` wins).
    python : str, optional
        The Python version; default ``@conda_base``'s, else the launching one.
    disabled : bool, optional
        Run this step without an environment.
    """

    name = "conda"
    defaults: dict[str, Any] = {"packages": {}, "libraries": {}, "python": None, "disabled": None}


class PypiBaseDecorator(_EnvDecoratorMixin, FlowDecorator):
    """PyPI packages for every step of the flow (``@pypi`` on a step adds to them).

    Parameters
    ----------
    packages : dict, default {}
        Package name -> version, as ``@pypi``'s.
    python : str, optional
        The Python version of every step.
    disabled : bool, optional
        Run the steps without an environment (a step's ``@pypi(disabled=False)`` wins).
    """

    name = "pypi_base"
    defaults: dict[str, Any] = {"packages": {}, "python": None, "disabled": None}


class CondaBaseDecorator(_EnvDecoratorMixin, FlowDecorator):
    """Conda packages for every step of the flow (``@conda`` on a step adds to them).

    Parameters
    ----------
    packages, libraries, python, disabled
        As ``@conda``'s, for every step.
    """

    name = "conda_base"
    defaults: dict[str, Any] = {"packages": {}, "libraries": {}, "python": None, "disabled": None}


@dataclass(frozen=True)
class _Side:
    """One tool's merged view of a step: the step decorator over the flow's ``_base``."""

    kind: EnvKind
    packages: dict[str, str]
    python: str | None
    disabled: bool


def _merge(step_deco: Any, base_deco: Any, kind: EnvKind) -> _Side | None:
    if step_deco is None and base_deco is None:
        return None
    s = step_deco.validate().attributes if step_deco is not None else {}
    b = base_deco.validate().attributes if base_deco is not None else {}
    disabled = s.get("disabled") if s.get("disabled") is not None else b.get("disabled")
    return _Side(kind, {**b.get("packages", {}), **s.get("packages", {})},
                 s.get("python") or b.get("python") or None, str(disabled).lower() == "true")


def _names(decos: Iterable[Any]) -> dict[str, Any]:
    return {d.name: d for d in decos if d.name in STEP_KINDS or d.name in BASE_OF.values()}


def step_env_requests(flow_cls: type, steps: Iterable[str], environment: ExecutionEnvironment | str,
                      project_dir: str | None = None) -> dict[str, EnvRequest | None]:
    """The environment each step of ``steps`` runs in (``None``: the launching interpreter).

    Parameters
    ----------
    flow_cls : type
        The flow, its decorators attached (``--with`` included).
    steps : iterable of str
        The step names.
    environment : ExecutionEnvironment or str
        The value of ``--environment``.
    project_dir : str, optional
        The flow's directory, the uv project of ``--environment=uv``.

    Raises
    ------
    EnvironmentNotEnabled
        ``@pypi``/``@conda`` (or their ``_base`` forms) without ``--environment=pypi|conda``.
    DecoratorConflict
        PyPI and conda packages asked for on one step, or ``@pypi_base`` with ``@conda_base``.
    """
    env = ExecutionEnvironment(environment)
    steps = list(steps)
    flow_level = _names(flow_decorators(flow_cls))
    step_level = {name: _names(getattr(getattr(flow_cls, name), "decorators", ())) for name in steps}
    if env not in DECORATOR_ENVIRONMENTS:
        used = [(f"@{n}", "the flow") for n in flow_level] + [
            (f"@{n}", f"step {s!r}") for s, decos in step_level.items() for n in decos]
        if used:
            deco, where = used[0]
            raise EnvironmentNotEnabled(
                f"{deco} on {where} requires --environment=pypi or --environment=conda "
                f"(this run has --environment={env.value}).",
                hint=f"Run with `python flow.py --environment=pypi run`, or remove {deco}.")
        if env is ExecutionEnvironment.UV:
            return dict.fromkeys(steps, EnvRequest(EnvKind.UV, project=project_dir))
        return dict.fromkeys(steps, None)
    if "pypi_base" in flow_level and "conda_base" in flow_level:
        raise DecoratorConflict(
            f"Flow {flow_cls.__name__!r} has both @pypi_base and @conda_base: a step's environment is "
            "built by one tool.",
            hint="Keep one of @pypi_base and @conda_base (conda packages can include pip's through "
                 "@conda only).")
    out: dict[str, EnvRequest | None] = {}
    for name in steps:
        sides = [side for side in (_merge(step_level[name].get(deco), flow_level.get(BASE_OF[deco]), kind)
                                   for deco, kind in STEP_KINDS.items()) if side is not None]
        out[name] = _request(name, sides)
    return out


def _request(step: str, sides: list[_Side]) -> EnvRequest | None:
    if not sides or any(side.disabled for side in sides):
        return None
    with_packages = [side for side in sides if side.packages]
    if len(with_packages) > 1:
        raise DecoratorConflict(
            f"Step {step!r} asks for PyPI packages ({_listing(with_packages[0].packages)}) and conda packages "
            f"({_listing(with_packages[1].packages)}): mixing the two in one step is not supported.",
            hint=f"Use one of @pypi and @conda on step {step!r} (and the flow's matching _base decorator).")
    chosen = with_packages[0] if with_packages else sides[0]
    python = chosen.python or next((side.python for side in sides if side.python), None)
    return EnvRequest(chosen.kind, python=python, packages=tuple(sorted(chosen.packages.items())))


def _listing(packages: Mapping[str, str]) -> str:
    return ", ".join(sorted(packages))


pypi = _make(PypiDecorator)
conda = _make(CondaDecorator)
pypi_base = make_flow_decorator(PypiBaseDecorator)
conda_base = make_flow_decorator(CondaBaseDecorator)

__all__ = ["CondaBaseDecorator", "CondaDecorator", "EnvironmentNotEnabled", "ExecutionEnvironment",
           "PypiBaseDecorator", "PypiDecorator", "conda", "conda_base", "pypi", "pypi_base", "step_env_requests"]
