"""TaskSpec and TaskResult: the only contract between the scheduler and
whatever runs a task (fork pool, ``python flow.py step``, Ray, Kubernetes).

Both are small, frozen and JSON-serialisable so any launcher can carry them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class ForeachFrame:
    """One level of foreach nesting a task sits in."""

    step: str  # the foreach split step
    var: str  # the attribute iterated over
    index: int
    num_splits: int
    value: str  # short repr of the item, for display


def stack_record(stack: "tuple[ForeachFrame, ...]") -> list[dict[str, Any]]:
    """A foreach stack as the attempt record stores it."""
    return [asdict(f) for f in stack]


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """Everything a task process needs to run one attempt of one task."""

    flow_name: str
    run_id: str
    step_name: str
    task_id: str
    attempt: int
    input_paths: tuple[str, ...]  # "<step>/<task_id>" of parents, committed attempts
    input_attempts: tuple[int, ...]  # the attempt number of each input
    datastore_root: str
    user: str
    split_index: int | None = None
    identity: str | None = None  # "production:<token>" in a production deployment's task; None: "user:<user>"
    foreach_stack: tuple[ForeachFrame, ...] = ()
    tags: tuple[str, ...] = ()
    origin_run_id: str | None = None
    max_user_code_retries: int = 0
    env: tuple[tuple[str, str], ...] = ()
    decospecs: tuple[str, ...] = ()  # ``--with`` decorators, re-attached by a fresh interpreter
    fallback: dict[str, str] | None = None  # a crashed/timed-out attempt @catch must record
    extra: tuple[tuple[str, str], ...] = ()
    # When the attempt must end (@timeout), as an absolute ``time.monotonic()`` value set by the
    # scheduler at launch. CLOCK_MONOTONIC is shared by the processes of one host; a launcher
    # that runs the task on another host must translate it to that host's clock.
    deadline: float | None = None
    # The task has its process to itself (a fork-pool child, a ``step`` subprocess), so on a
    # timeout it may kill every process it started; False in a long-lived worker.
    dedicated_process: bool = False
    # The local run process that launched the attempt (``runtime.owner.process_token``): the
    # attempt commits only while it lives. None where no such process watches (an orchestrator).
    run_owner: str | None = None

    @property
    def key(self) -> str:
        """``<step>/<task_id>``: the task's path within its run."""
        return f"{self.step_name}/{self.task_id}"

    @property
    def pathspec(self) -> str:
        return f"{self.flow_name}/{self.run_id}/{self.step_name}/{self.task_id}"

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "TaskSpec":
        d = json.loads(text)
        d["input_paths"] = tuple(d["input_paths"])
        d["input_attempts"] = tuple(d["input_attempts"])
        d["foreach_stack"] = tuple(ForeachFrame(**f) for f in d["foreach_stack"])
        d["tags"] = tuple(d["tags"])
        d["decospecs"] = tuple(d.get("decospecs", ()))
        d["env"] = tuple(tuple(x) for x in d["env"])
        d["extra"] = tuple(tuple(x) for x in d["extra"])
        return cls(**d)


@dataclass(frozen=True, slots=True)
class TaskResult:
    """What the scheduler learns from a finished attempt (never by reading the store)."""

    task_key: str  # "<step>/<task_id>"
    attempt: int
    ok: bool
    started_at: float
    finished_at: float
    next_steps: tuple[str, ...] = ()  # steps to run next (a switch: the chosen case)
    foreach_var: str | None = None
    num_splits: int | None = None  # a foreach split: how many children
    foreach_values: tuple[str, ...] = ()  # short reprs of the items, for display
    switch_case: str | None = None
    exception: dict[str, str] | None = None  # {"type", "message", "traceback"}
    user_error: bool = False  # a mistake the user can fix (vs. a bug in their step)
    record: dict[str, Any] = field(default_factory=dict, compare=False)  # the committed record (summary)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "TaskResult":
        d = json.loads(text)
        for k in ("next_steps", "foreach_values"):
            d[k] = tuple(d[k])
        return cls(**d)
