"""A task's command line, per the shared orchestrator contract (docs/kubernetes.md).

``step_args`` and ``init_args`` are the arguments after ``python FLOW_FILE``;
``bootstrap_command`` wraps them so that a container first fetches the run's
code package from the datastore and then runs the flow file's CLI with them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from ...runtime.taskspec import TaskSpec
from ..commands import datastore_args



@dataclass(frozen=True, slots=True)
class StepInvocation:
    """One attempt of one task, as ``python FLOW_FILE step ...`` names it."""

    step: str
    run_id: str
    task_id: str
    input_paths: tuple[str, ...]
    retry_count: int = 0
    max_user_code_retries: int = 0
    split_index: int | None = None
    tags: tuple[str, ...] = ()
    namespace: str | None = None
    output_dir: str | None = None
    decospecs: tuple[str, ...] = ()  # ``--with`` decorators of the run, given before ``step``


def invocation_for(spec: TaskSpec) -> StepInvocation:
    """The ``step`` invocation of a scheduler's ``TaskSpec`` (its input paths made ``RUN/STEP/TASK``;
    ``run --namespace`` as ``--namespace``; a ``@catch`` fallback attempt is its ``retry_count`` past
    ``max_user_code_retries``, as in Metaflow)."""
    return StepInvocation(
        step=spec.step_name, run_id=spec.run_id, task_id=spec.task_id,
        input_paths=tuple(f"{spec.run_id}/{p}" for p in spec.input_paths), retry_count=spec.attempt,
        max_user_code_retries=spec.max_user_code_retries, split_index=spec.split_index, tags=spec.tags,
        namespace=dict(spec.extra).get("namespace"), decospecs=spec.decospecs)



def step_args(datastore_root: str, inv: StepInvocation) -> list[str]:
    """``--datastore=s3 --datastore-root ROOT [--with D ...] step STEP --run-id ... --input-paths ...``."""
    args = [*datastore_args(datastore_root)]
    for spec in inv.decospecs:
        args += ["--with", spec]
    args += ["step", inv.step, "--run-id", inv.run_id,
            "--task-id", inv.task_id, "--input-paths", ",".join(inv.input_paths)]
    if inv.split_index is not None:
        args += ["--split-index", str(inv.split_index)]
    args += ["--retry-count", str(inv.retry_count), "--max-user-code-retries", str(inv.max_user_code_retries)]
    for tag in inv.tags:
        args += ["--tag", tag]
    if inv.namespace is not None:
        args += ["--namespace", inv.namespace]
    if inv.output_dir is not None:
        args += ["--output-dir", inv.output_dir]
    return args


def init_args(datastore_root: str, *, run_id: str, task_id: str, tags: tuple[str, ...] = (),
              parameters: Mapping[str, Any] | None = None) -> list[str]:
    """``--datastore=s3 --datastore-root ROOT init --run-id RUN --task-id TASK [--tag T] [--PARAM VALUE]``."""
    args = [*datastore_args(datastore_root), "init", "--run-id", run_id, "--task-id", task_id]
    for tag in tags:
        args += ["--tag", tag]
    for name, value in (parameters or {}).items():
        args += [f"--{name}", str(value)]
    return args

