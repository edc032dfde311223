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
from dataclasses import dataclass
from typing import Any

from ..taskspec import TaskResult, TaskSpec


@dataclass(frozen=True, slots=True)
class Finished:
    """A task process that ended."""

    task_key: str
    attempt: int
    result: TaskResult | None  # None: the process died before reporting (crash, kill)
    returncode: int  # negative: killed by that signal


@dataclass(frozen=True, slots=True)
class TaskContext:
    """What a launcher needs besides the spec: the flow and where logs go."""

    flow_cls: type
    graph: Any
    datastore_root: str
    script: str


class Launcher(abc.ABC):
    """Runs task attempts; the scheduler's only way to execute anything."""

    name: str = "base"

    def __init__(self, ctx: TaskContext) -> None:
        self.ctx = ctx

    def start(self) -> None:
        """Prepare (e.g. fork the zygote). Called before the scheduler starts threads."""

    @abc.abstractmethod
    def launch(self, spec: TaskSpec, stdout_path: str, stderr_path: str) -> int:
        """Start one attempt; returns the task process's pid."""

    @abc.abstractmethod
    def poll(self, timeout: float) -> list[Finished]:
        """Wait up to ``timeout`` seconds; return the tasks that ended meanwhile."""

    @abc.abstractmethod
    def kill(self, task_key: str) -> None:
        """Kill a running task (SIGKILL); it is then reported by ``poll``."""

    def shutdown(self) -> None:
        """Release resources; running tasks are killed."""


def redirect_output(stdout_path: str, stderr_path: str) -> None:
    """Point fds 1 and 2 at the task's log files, line-buffered, so logs stream as produced."""
    for fd, path in ((1, stdout_path), (2, stderr_path)):
        f = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(f, fd)
        os.close(f)
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), line_buffering=True, write_through=True)
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), line_buffering=True, write_through=True)


def run_task(spec: TaskSpec, ctx: TaskContext) -> TaskResult:
    """The task-process side shared by every local launcher."""
    from ...store import Datastore
    from ..executor import execute

    env = dict(spec.env)
    if env:
        os.environ.update(env)
    return execute(spec, ctx.flow_cls, ctx.graph, Datastore(spec.datastore_root))
