"""A launcher that sends some steps' tasks to one launcher and the rest to another.

Built by ``make_launcher`` when steps carry ``@ray_task`` and the run's launcher is
local: those steps' tasks go to the Ray launcher, every other task to the local
one. The scheduler sees one launcher; admission is asked per step of the one
that will run it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ..taskspec import TaskSpec
from .admission import Admission, Env, Request
from .base import Finished, Launcher, TaskContext


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
    """Runs the tasks of ``steps`` with ``chosen`` and all others with ``default``."""

    name = "routing"
    remote = True

    def __init__(self, ctx: TaskContext, default: Launcher, chosen: Launcher, steps: Iterable[str]) -> None:
        super().__init__(ctx)
        self.default = default
        self.chosen = chosen
        self.steps = frozenset(steps)
        self.remote = chosen.remote or default.remote
        self.admission = _RoutedAdmission(self)
        self._where: dict[str, Launcher] = {}  # running task key -> its launcher

    def for_step(self, step: str) -> Launcher:
        return self.chosen if step in self.steps else self.default

    def ships_logs_of(self, spec: TaskSpec) -> bool:
        return self.for_step(spec.step_name).ships_logs_of(spec)

    def use_code_package(self, info: dict[str, Any]) -> None:
        self.default.use_code_package(info)
        self.chosen.use_code_package(info)

    def start(self) -> None:
        self.default.start()  # a fork pool forks its zygote before the other starts threads
        self.chosen.start()

    def launch(self, spec: TaskSpec, stdout_path: str, stderr_path: str) -> int:
        launcher = self.for_step(spec.step_name)
        self._where[spec.key] = launcher
        return launcher.launch(spec, stdout_path, stderr_path)

    def poll(self, timeout: float) -> list[Finished]:
        busy = [x for x in (self.default, self.chosen) if x in self._where.values()]
        if not busy:
            busy = [self.default]
        out: list[Finished] = []
        # The first busy launcher waits; the other is only asked what already ended.
        for i, launcher in enumerate(busy):
            out += launcher.poll(timeout if i == 0 and len(busy) == 1 else (timeout / 2 if i == 0 else 0.0))
        for f in out:
            self._where.pop(f.task_key, None)
        return out

    def kill(self, task_key: str) -> None:
        launcher = self._where.get(task_key)
        if launcher is not None:
            launcher.kill(task_key)

    def shutdown(self) -> None:
        try:
            self.chosen.shutdown()
        finally:
            self.default.shutdown()
