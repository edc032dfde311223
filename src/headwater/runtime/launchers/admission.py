"""Admission: whether a task's ``@resources`` fit where a launcher runs tasks.

The scheduler only asks (``Admission.check``, ``admit``, ``release``); the
launcher's admission decides. The base ``Admission`` admits everything (a launcher whose
own scheduler places tasks, e.g. Ray or Kubernetes); ``LocalMachine`` counts the
CPUs and GPUs of this machine and gives each task holding GPUs its own
``CUDA_VISIBLE_DEVICES``. ``HEADWATER_MACHINE`` (JSON) describes the machine
instead of detecting it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ...exceptions import HeadwaterException, ResourcesError

#: The env var that names the GPUs a task may use.
CUDA_VISIBLE_DEVICES = "CUDA_VISIBLE_DEVICES"

Env = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Request:
    """What one task asks for with ``@resources``."""

    cpu: float
    gpu: int = 0


@dataclass(frozen=True)
class Machine:
    """What one machine offers to ``@resources`` tasks."""

    cpus: float
    gpus: int


class Admission:
    """Admits every task at once and sets nothing (a launcher that places tasks itself)."""

    def expect(self, requests: Iterable[Request]) -> None:
        """Learn, before the run, what its tasks may ask for (e.g. whether to look for GPUs)."""

    def check(self, step: str, request: Request, count: int = 1) -> None:
        """Raise ResourcesError if ``count`` tasks of ``step`` asking ``request`` each can never run together.

        ``count`` > 1 is a ``@parallel`` gang, whose tasks must all run at once.
        """

    def admit(self, tasks: Sequence[tuple[str, Request]]) -> list[Env] | None:
        """Reserve room for all of ``tasks`` (task key, request) or for none.

        Returns the env each task runs with (in order), or None when they must wait
        for room; call only after ``check`` passed.
        """
        return [() for _ in tasks]

    def release(self, key: str) -> None:
        """Give back the room of the task ``key`` (a key never admitted is ignored)."""



def parse_machine(desc: str) -> Machine:
    """The machine ``HEADWATER_MACHINE`` describes, e.g. ``{"cpus": 8, "gpus": 2}``."""
    try:
        d = json.loads(desc)
        return Machine(cpus=float(d.get("cpus", os.cpu_count() or 1)), gpus=int(d.get("gpus", 0)))
    except (ValueError, TypeError, AttributeError):
        raise HeadwaterException(
            f"HEADWATER_MACHINE={desc!r} is not a machine description.",
            hint='Use JSON like {"cpus": 8, "gpus": 2}.',
        ) from None


def detect_gpus() -> int:
    """GPUs this process may use: ``CUDA_VISIBLE_DEVICES`` if set, else ``nvidia-smi -L``."""
    visible = os.environ.get(CUDA_VISIBLE_DEVICES)
    if visible is not None:
        return len([g for g in visible.split(",") if g.strip()])
    if not shutil.which("nvidia-smi"):
        return 0
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in out.splitlines() if line.startswith("GPU "))


def _ask(request: Request) -> str:
    return f"@resources(cpu={request.cpu:g}, gpu={request.gpu})"


class LocalMachine(Admission):
    """The CPUs and GPUs of the machine the local launchers (fork pool, subprocess) run tasks on.

    Parameters
    ----------
    machine : Machine, optional
        Its capacity; by default the CPU count, with GPUs detected once a step asks for one.
    """

    def __init__(self, machine: Machine | None = None) -> None:
        self._machine = machine
        self._cpu_used = 0.0
        self._free_gpus: list[int] = []
        self._held: dict[str, tuple[float, tuple[int, ...]]] = {}  # admitted task -> (cpus, gpus)
        if machine is not None:
            self._free_gpus = list(range(machine.gpus))

    @classmethod
    def from_description(cls, desc: str | None) -> LocalMachine:
        """From ``HEADWATER_MACHINE`` when set; else the machine is detected."""
        return cls(parse_machine(desc) if desc else None)

    @property
    def machine(self) -> Machine:
        """The capacity (CPUs counted now, no GPUs, if nothing was described or expected)."""
        if self._machine is None:
            self._set(Machine(cpus=float(os.cpu_count() or 1), gpus=0))
        return self._machine  # type: ignore[return-value]

    def _set(self, machine: Machine) -> None:
        self._machine = machine
        self._free_gpus = list(range(machine.gpus))

    def expect(self, requests: Iterable[Request]) -> None:
        if self._machine is None:
            gpus = detect_gpus() if any(r.gpu for r in requests) else 0
            self._set(Machine(cpus=float(os.cpu_count() or 1), gpus=gpus))

    def check(self, step: str, request: Request, count: int = 1) -> None:
        m = self.machine
        if count * request.cpu <= m.cpus and count * request.gpu <= m.gpus:
            return
        has = f"this machine has {m.cpus:g} CPUs and {m.gpus} GPUs."
        if count == 1:
            raise ResourcesError(
                f"Step {step!r} asks for {_ask(request)} but {has}",
                hint="Lower the request, or run the step where it fits (HEADWATER_MACHINE describes the machine).",
            )
        raise ResourcesError(
            f"The @parallel step {step!r} starts {count} tasks together, each with {_ask(request)}, but {has}",
            hint="Lower num_parallel or the request, or run the step where the whole gang fits "
            "(HEADWATER_MACHINE describes the machine).",
        )

    def admit(self, tasks: Sequence[tuple[str, Request]]) -> list[Env] | None:
        m = self.machine
        cpus = sum(r.cpu for _, r in tasks)
        gpus = sum(r.gpu for _, r in tasks)
        if self._cpu_used + cpus > m.cpus or len(self._free_gpus) < gpus:
            return None
        envs: list[Env] = []
        for key, r in tasks:
            mine = tuple(self._free_gpus[: r.gpu])
            del self._free_gpus[: r.gpu]
            self._cpu_used += r.cpu
            self._held[key] = (r.cpu, mine)
            # On a GPU machine every @resources task is told which GPUs it has (none: "").
            envs.append(((CUDA_VISIBLE_DEVICES, ",".join(map(str, mine))),) if m.gpus else ())
        return envs

    def release(self, key: str) -> None:
        held = self._held.pop(key, None)
        if held is None:
            return
        cpu, gpus = held
        self._cpu_used -= cpu
        self._free_gpus = sorted(self._free_gpus + list(gpus))
