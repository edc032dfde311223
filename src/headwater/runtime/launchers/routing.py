"""Send each step's tasks to the launcher its decorator asks for; the rest to the run's launcher.

A *backend* is a launcher that a step decorator selects: ``@ray_task`` sends a
step's tasks to Ray, ``@kubernetes`` to Kubernetes (``BACKENDS``). ``make_launcher``
(``runtime.launchers``) builds the run's launcher by name and, for every other
backend some steps ask for, that backend's launcher; a ``RoutingLauncher`` then
hands each task to the launcher of its step. The scheduler sees one launcher;
admission is asked per step of the one that will run it. A new backend is one
entry in ``BACKENDS`` and a launcher module, nothing else.

Steps with a built environment (``@pypi``, ``--environment=uv``: ``TaskContext.environments``)
need their environment's interpreter: locally they go to a subprocess launcher, unless the run's
launcher already is one; on Ray and Kubernetes the node or pod builds the environment itself
(``environments.remote``), so such a step stays with the backend it asks for.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Callable

from ...exceptions import HeadwaterException
from ..taskspec import TaskSpec
from .admission import Admission, Env, Request
from .base import Finished, Launcher, TaskContext


class LauncherConflictError(HeadwaterException):
    """A step asks for two backends at once."""

    headline = "Conflicting launchers"


@dataclass(frozen=True, slots=True)
class Backend:
    """A launcher that a step decorator selects.

    ``build`` names (``"module:function"``, relative to this package) a function
    ``(ctx, decorators) -> Launcher`` given the validated decorator of each step
    routed there, keyed by step (empty when the backend runs every step).
    """

    name: str  # its HEADWATER_LAUNCHER value
    decorator: str  # the step decorator that routes a step to it
    build: str

    def launcher(self, ctx: TaskContext, decorators: Mapping[str, Any]) -> Launcher:
        module, _, attr = self.build.partition(":")
        factory: Callable[[TaskContext, Mapping[str, Any]], Launcher] = getattr(
            importlib.import_module(module, __package__), attr)
        return factory(ctx, decorators)


#: Every backend a decorator can route steps to.
BACKENDS = (
    Backend("ray", "ray_task", ".ray:launcher_for_steps"),
    Backend("kubernetes", "kubernetes", ".kubernetes:launcher_for_steps"),
)
BACKEND_BY_NAME = {b.name: b for b in BACKENDS}


def decorated_steps(flow_cls: type, steps: Iterable[str], decorator: str) -> dict[str, Any]:
    """The steps of ``flow_cls`` carrying ``decorator`` (after ``--with``), each with it validated."""
    out: dict[str, Any] = {}
    for name in steps:
        for deco in getattr(getattr(flow_cls, name, None), "decorators", ()):
            if deco.name == decorator:
                out[name] = deco.validate()
    return out


def remote_steps(flow_cls: type, steps: Iterable[str], launcher: str) -> set[str]:
    """The steps of ``flow_cls`` that run on a backend (every one when the run's ``launcher`` is one),
    not on this machine: their environments are built where they run."""
    steps = tuple(steps)
    if launcher in BACKEND_BY_NAME:
        return set(steps)
    return {step for backend in BACKENDS for step in decorated_steps(flow_cls, steps, backend.decorator)}


def environment_steps(ctx: TaskContext) -> list[str]:
    """The steps that run in a built environment (``TaskContext.environments``)."""
    envs = ctx.environments
    return [s for s in getattr(ctx.graph, "sorted_nodes", ()) if envs is not None and s in envs.steps]


def route(ctx: TaskContext, base: Launcher, backend: Backend | None = None) -> Launcher:
    """``base`` (the run's launcher, itself ``backend`` if it is one), with the steps that ask
    for another backend routed to it.

    Raises
    ------
    LauncherConflictError
        A step asks for two backends (``@ray_task`` and ``@kubernetes``).
    """
    steps = tuple(getattr(ctx.graph, "sorted_nodes", ()))
    routes: dict[str, Launcher] = {}
    asked: dict[str, str] = {}
    env_steps = environment_steps(ctx)
    for other in BACKENDS:
        decorators = decorated_steps(ctx.flow_cls, steps, other.decorator)
        for step in decorators:
            if step in asked:
                raise LauncherConflictError(
                    f"Step {step!r} has both @{asked[step]} and @{other.decorator}: a step runs in one place.",
                    hint=f"Keep one of @{asked[step]} and @{other.decorator} on step {step!r}.")
            asked[step] = other.decorator
        if not decorators or other is backend:
            continue
        launcher = other.launcher(ctx, decorators)
        routes.update(dict.fromkeys(decorators, launcher))
    # Environment steps that run here (not on a backend, which builds environments itself).
    local_env_steps = [s for s in env_steps if s not in asked] if backend is None else []
    from .subprocess import SubprocessLauncher

    if local_env_steps and not isinstance(base, SubprocessLauncher):  # it runs them in their interpreter
        isolated = SubprocessLauncher(ctx)
        routes.update(dict.fromkeys(local_env_steps, isolated))
    if not routes:
        return base
    chosen = set(routes.values())
    if len(chosen) == 1 and set(routes) >= set(steps):  # every step goes there: the run's launcher is unused
        return chosen.pop()
    return RoutingLauncher(ctx, base, routes)


class _RoutedAdmission(Admission):
    """Each step's requests go to the admission of the launcher that runs the step."""

    def __init__(self, router: RoutingLauncher) -> None:
        self._router = router
        self._owner: dict[str, Admission] = {}  # admitted task key -> admission holding its room

    def expect(self, requests: Iterable[Request]) -> None:
        self._router.default.admission.expect(requests)

    def check(self, step: str, request: Request, count: int = 1) -> None:
        self._router.for_step(step).admission.check(step, request, count)

    def admit(self, tasks: Sequence[tuple[str, Request]]) -> list[Env] | None:
        if not tasks:
            return []
        admission = self._router.for_step(tasks[0][0].partition("/")[0]).admission
        envs = admission.admit(tasks)
        if envs is not None:
            for key, _ in tasks:
                self._owner[key] = admission
        return envs

    def release(self, key: str) -> None:
        admission = self._owner.pop(key, None)
        if admission is not None:
            admission.release(key)


class RoutingLauncher(Launcher):
    """Runs the tasks of each step in ``routes`` with its launcher, all others with ``default``."""

    name = "routing"

    def __init__(self, ctx: TaskContext, default: Launcher, routes: Mapping[str, Launcher]) -> None:
        super().__init__(ctx)
        self.default = default
        self.routes = dict(routes)
        # Each launcher once, the default first (it forks its zygote before another starts threads).
        self.launchers: list[Launcher] = [default, *dict.fromkeys(x for x in routes.values() if x is not default)]
        self.remote = any(x.remote for x in self.launchers)
        self.admission = _RoutedAdmission(self)
        self._where: dict[str, Launcher] = {}  # running task key -> its launcher

    def for_step(self, step: str) -> Launcher:
        return self.routes.get(step, self.default)

    def ships_logs_of(self, spec: TaskSpec) -> bool:
        return self.for_step(spec.step_name).ships_logs_of(spec)

    def use_code_package(self, info: dict[str, Any]) -> None:
        for launcher in self.launchers:
            launcher.use_code_package(info)

    def start(self) -> None:
        for launcher in self.launchers:
            launcher.start()

    def launch(self, spec: TaskSpec, stdout_path: str, stderr_path: str) -> int:
        launcher = self.for_step(spec.step_name)
        self._where[spec.key] = launcher
        return launcher.launch(spec, stdout_path, stderr_path)

    def poll(self, timeout: float) -> list[Finished]:
        running = set(self._where.values())
        busy = [x for x in self.launchers if x in running] or [self.default]
        out: list[Finished] = []
        # The first busy launcher waits (half the time when others are busy too); the others are
        # only asked what already ended.
        for i, launcher in enumerate(busy):
            out += launcher.poll(0.0 if i else (timeout if len(busy) == 1 else timeout / 2))
        for f in out:
            self._where.pop(f.task_key, None)
        return out

    def kill(self, task_key: str) -> None:
        launcher = self._where.get(task_key)
        if launcher is not None:
            launcher.kill(task_key)

    def shutdown(self) -> None:
        errors: list[BaseException] = []
        for launcher in reversed(self.launchers):  # the default last, as it was started first
            try:
                launcher.shutdown()
            except BaseException as e:  # every launcher gets its shutdown
                errors.append(e)
        if errors:
            raise errors[0]
