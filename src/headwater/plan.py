"""Pure functions that place a task in an orchestrated run (bottom layer: the ``step`` command
and every orchestrator compiler share them): its task id,
the input paths of a join, the split indexes of a foreach, and Metaflow's ``--input-paths``
format. No scheduler state and no store: an orchestrator compiler (Argo, Kubernetes) computes
the same values at compile time that the ``step`` command checks at run time.

Task ids of an orchestrated run are readable and follow the task's position, not a counter:

- the first task of the run (the start step) is ``"1"``;
- a foreach child is its parent's id, ``-``, its split index (``"1-0"``, ``"1-0-2"``);
- the join that closes a foreach takes the id of the foreach step's task (``"1"`` again);
- a step that loops back to itself (a switch) appends ``_<n>`` for its n-th repeat
  (``"1_1"``, ``"1_2"``);
- any other step keeps its parent's id.

Task ids are unique per step, so ``<step>/<id>`` names one task. Metaflow's Argo uses hashes
of the same position (Kubernetes names are short); these ids stay short for any realistic
nesting and say where the task sits.
"""

from __future__ import annotations

import base64
import zlib

#: The task id of the start step (and so of every step outside any foreach).
FIRST_TASK_ID = "1"
#: Between a foreach task's id and its child's split index.
SPLIT_SEP = "-"
_LOOP_SEP = "_"


def child_task_id(parent_task_id: str, split_index: int) -> str:
    """The task id of the ``split_index``-th child of a foreach task.

    >>> child_task_id("1", 2)
    '1-2'
    """
    return f"{parent_task_id}{SPLIT_SEP}{split_index}"


def join_task_id(split_task_id: str) -> str:
    """The task id of the join that closes a foreach: the foreach step's own task id."""
    return split_task_id


def next_task_id(parent_step: str, parent_task_id: str, step: str) -> str:
    """The task id of ``step`` reached from one parent task (not a foreach child, not a
    foreach join): the parent's id, or a new repeat suffix when ``step`` loops to itself.

    >>> next_task_id("loop", "1_1", "loop")
    '1_2'
    """
    if step != parent_step:
        return parent_task_id
    base, sep, count = parent_task_id.rpartition(_LOOP_SEP)
    if sep and count.isdigit():
        return f"{base}{_LOOP_SEP}{int(count) + 1}"
    return f"{parent_task_id}{_LOOP_SEP}1"


def split_indexes(num_splits: int) -> list[int]:
    """The split indexes of a foreach with ``num_splits`` children (Argo's ``withParam`` list)."""
    return list(range(num_splits))


def foreach_join_inputs(run_id: str, body_step: str, split_task_id: str, num_splits: int) -> list[str]:
    """Input pathspecs of the join that closes a foreach: the last body step's task of
    every split, in split order (assumes the body steps keep the child's id, as above)."""
    return [f"{run_id}/{body_step}/{child_task_id(split_task_id, i)}" for i in split_indexes(num_splits)]


def branch_join_inputs(run_id: str, branch_tasks: list[tuple[str, str]]) -> list[str]:
    """Input pathspecs of a static join: one ``(step, task id)`` per branch, in branch order."""
    return [f"{run_id}/{step}/{task}" for step, task in branch_tasks]


def format_input_paths(paths: list[str]) -> str:
    """Metaflow's ``--input-paths`` value: pathspecs joined by commas."""
    return ",".join(paths)


def parse_input_paths(value: str) -> list[tuple[str, str, str]]:
    """``(run, step, task)`` of each pathspec in an ``--input-paths`` value.

    Reads every form Metaflow writes: ``a,b``; a common prefix and suffixes,
    ``PREFIX:s1,s2``; and ``!`` + base64 of a twice zlib-compressed list. A malformed
    pathspec raises ``ValueError`` naming it.
    """
    text = value.strip()
    if text.startswith("!"):
        text = zlib.decompress(zlib.decompress(base64.b64decode(text[1:]))).decode("utf-8")
    if ":" in text:
        prefix, _, rest = text.partition(":")
        items = [prefix + s for s in rest.split(",")]
    else:
        items = text.split(",")
    out = []
    for item in items:
        parts = item.strip().split("/")
        if len(parts) != 3 or not all(parts):
            raise ValueError(f"{item!r} is not a RUN/STEP/TASK pathspec")
        out.append((parts[0], parts[1], parts[2]))
    return out
