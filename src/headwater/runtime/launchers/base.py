"""The Launcher interface: how the scheduler gets a TaskSpec executed somewhere.

A launcher knows nothing of step semantics. It starts tasks, reports each
finished one as a ``Finished`` (with the TaskResult when the task process got
far enough to send one), and kills on request. New backends (Ray, Kubernetes)
are new launchers; nothing else changes.
"""

from __future__ import annotations

import abc
import io
import os
import sys
import time
from dataclasses import dataclass
from typing import Any

from ..taskspec import TaskResult, TaskSpec
from .admission import Admission


@dataclass(frozen=True, slots=True)
class Finished:
    """A task process that ended."""

    task_key: str
    attempt: int
    result: TaskResult | None  # None: the process died before reporting (crash, kill)
    returncode: int  # negative: killed by that signal
    message: str | None = None  # why it died without a result, when the launcher knows (a remote node)


@dataclass(frozen=True, slots=True)
class TaskContext:
    """What a launcher needs besides the spec: the flow and where logs go."""

    flow_cls: type
    graph: Any
    datastore_root: str
    script: str
    decorators_attached: bool = True  # False in a fresh interpreter: apply spec.decospecs
    machine: str | None = None  # HEADWATER_MACHINE: the local machine's description, if set
    ray_address: str | None = None  # HEADWATER_RAY_ADDRESS, if set
    settings: Any = None  # the run's Settings (a launcher that builds pods reads its configuration)
    # The run's built step environments (environments.prepare.PreparedEnvironments), if any step has one:
    # those steps run in their environment's interpreter (the subprocess launcher).
    environments: Any = None


class Launcher(abc.ABC):
    """Runs task attempts; the scheduler's only way to execute anything.

    ``admission`` decides whether a task's ``@resources`` fit (runtime.launchers.admission):
    the base one admits everything, for a launcher whose own scheduler places tasks;
    the local launchers count this machine's CPUs and GPUs.
    """

    name: str = "base"
    #: Whether the launcher's tasks ship their own logs to the store (a remote launcher: the
    #: scheduler tails the store); False: tasks write the local files the scheduler gives them.
    ships_logs: bool = False
    #: Tasks run on other machines: the run stores its code package and hands it to ``use_code_package``.
    remote: bool = False

    def __init__(self, ctx: TaskContext) -> None:
        self.ctx = ctx
        self.admission: Admission = Admission()

    def ships_logs_of(self, spec: TaskSpec) -> bool:
        """Whether ``spec``'s task ships its logs to the store (a routing launcher decides per step)."""
        return self.ships_logs

    def use_code_package(self, info: dict[str, Any]) -> None:
        """The run's stored code package (its ``code_package`` record), for a ``remote`` launcher."""

    def start(self) -> None:
        """Prepare (e.g. fork the zygote). Called before the scheduler starts threads."""

    @abc.abstractmethod
    def launch(self, spec: TaskSpec, stdout_path: str, stderr_path: str) -> int:
        """Start one attempt; returns the task process's pid.

        A launcher that gives the attempt a process of its own sets ``spec.dedicated_process``
        (the task may then kill every process it started when it times out); one that runs
        ``execute()`` in a long-lived worker leaves it False. One that runs the task on another
        host translates ``spec.deadline`` (this host's ``time.monotonic()``) to that host's clock.
        """

    @abc.abstractmethod
    def poll(self, timeout: float) -> list[Finished]:
        """Wait up to ``timeout`` seconds; return the tasks that ended meanwhile."""

    @abc.abstractmethod
    def kill(self, task_key: str) -> None:
        """Kill a running task (SIGKILL); it is then reported by ``poll``."""

    def shutdown(self) -> None:
        """Release resources; running tasks are killed."""


class StampedLines(io.TextIOBase):
    """A text stream writing straight to a log fd, each line prefixed with its time.

    Prefix: ``\x1e<epoch seconds>\x1f`` (see ``headwater.store.logs``). Writes go
    out immediately, so the log streams as produced and survives a crash.
    Output written at C level to the fd has no prefix; readers accept both.
    """

    def __init__(self, fd: int) -> None:
        super().__init__()
        self._fd = fd
        self._at_line_start = True

    def write(self, s: str) -> int:
        if not s:
            return 0
        stamp = f"\x1e{time.time():.6f}\x1f"
        pieces = s.split("\n")
        out = []
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            if last and not piece:
                break
            if self._at_line_start:
                out.append(stamp)
            out.append(piece)
            if not last:
                out.append("\n")
            self._at_line_start = not last
        data = memoryview("".join(out).encode("utf-8", "backslashreplace"))
        while data:
            data = data[os.write(self._fd, data):]
        return len(s)

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd

    def isatty(self) -> bool:
        return False

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"


def redirect_output(stdout_path: str, stderr_path: str) -> None:
    """Point fds 1 and 2 at the task's log files; Python-level output gets line timestamps."""
    for fd, path in ((1, stdout_path), (2, stderr_path)):
        f = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(f, fd)
        os.close(f)
    sys.stdout = StampedLines(1)
    sys.stderr = StampedLines(2)


def run_task(spec: TaskSpec, ctx: TaskContext) -> TaskResult:
    """The task-process side shared by every local launcher."""
    from ...store import Datastore
    from ..executor import execute

    env = dict(spec.env)
    if env:
        os.environ.update(env)
    if not ctx.decorators_attached:  # a fresh interpreter: mutators and --with shape the steps again
        from ...flow.mutators import prepare_flow

        prepare_flow(ctx.flow_cls, spec.decospecs)
    return execute(spec, ctx.flow_cls, ctx.graph, Datastore(spec.datastore_root))
