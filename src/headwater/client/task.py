"""The bottom of the client object tree (reading layer): ``Task``, its
artifacts (``DataArtifact``) and ``task.data``. A task reads its attempt
record once and its artifact values only when asked.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from ..exceptions import HeadwaterException, HeadwaterExceptionWrapper, HeadwaterNotFound
from .base import ChildNotFound, HeadwaterObject, to_datetime
from ..store.records import DAMAGED
from ..store.taskmeta import CRASH_TYPE, PARAMETERS_STEP
from .core import Step

if TYPE_CHECKING:
    from ..store.views import ArtifactView


class Metadata(NamedTuple):
    """One piece of task metadata, in Metaflow's shape."""

    #: What it is, e.g. ``"attempt"``, ``"user"``, ``"origin-run-id"``.
    name: str
    #: Its value (a string for the facts headwater derives; as recorded otherwise).
    value: Any
    #: When it was recorded, in milliseconds since the epoch.
    created_at: int
    #: Its kind, e.g. ``"attempt"``, ``"internal_attempt_status"``.
    type: str
    #: The ``Task`` it belongs to.
    task: Any


def _full_type(kind: str) -> str:
    """``module.Name`` of a recorded exception type (earlier records spelled builtins and
    headwater's own crash types without a module)."""
    if "." in kind:
        return kind
    from .. import exceptions

    return f"headwater.exceptions.{kind}" if hasattr(exceptions, kind) else f"builtins.{kind}"


class TaskData:
    """A task's artifact values by attribute: ``task.data.x``.

    Values load on first access and are then kept. ``_private`` artifacts
    can be read but are left out of ``dir()`` and the listing.
    """

    __slots__ = ("_task", "_values")

    def __init__(self, task: Task):
        self._task = task
        self._values: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        values = self._values
        if name in values:
            return values[name]
        refs = self._task._refs()
        if name not in refs:
            raise AttributeError(self._task._no_artifact_message(name))
        value = values[name] = self._task._source.load(refs[name])
        return value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._task._refs()

    def __dir__(self) -> list[str]:
        return self._task._public_names()

    def __iter__(self) -> Iterator[str]:
        return iter(self._task._public_names())

    def __repr__(self) -> str:
        return f"<TaskData {self._task.pathspec}: {', '.join(self._task._public_names())}>"

    def __reduce__(self) -> tuple[Any, ...]:
        return (TaskData, (self._task,))


class Task(HeadwaterObject):
    """One task of a step: one attempt record, its artifacts and logs.

    Parameters
    ----------
    pathspec : str
        ``"FlowName/run_id/step_name/task_id"``.
    attempt : int, optional
        Which attempt to read; default: the latest.

    Raises
    ------
    HeadwaterInvalidPathspec
        The pathspec does not have four components.
    HeadwaterNotFound
        There is no such run, step, task or attempt.
    HeadwaterNamespaceMismatch
        The run exists but is outside the current namespace.

    Examples
    --------
    >>> task = Task("HelloFlow/1763841234567890/start/1")  # doctest: +SKIP
    >>> task.data.alpha, task["alpha"].size, task.successful  # doctest: +SKIP
    (0.5, 21, True)
    """

    _KIND = "Task"
    _DEPTH = 4
    _CHILD_KIND = "artifact"

    # Per-object caches; class defaults so objects made by _make need no __init__.
    _row: Any = None
    _record: dict[str, Any] | None = None
    _data: TaskData | None = None

    def __init__(self, pathspec: str, attempt: int | None = None, *, _namespace_check: bool = True):
        if attempt is not None and (not isinstance(attempt, int) or isinstance(attempt, bool) or attempt < 0):
            from ..exceptions import HeadwaterInvalidPathspec

            raise HeadwaterInvalidPathspec(f"Task({pathspec!r}): attempt must be an int >= 0, got {attempt!r}.")
        self._open(pathspec, attempt, _namespace_check)

    def _reset_caches(self) -> None:
        self._row = None
        self._record = None
        self._data = None

    def _load(self) -> None:
        flow, run_id, step, task_id = self._components
        self._get_run_row()
        src = self._source
        row = src.task(flow, run_id, step, task_id)
        if row is None:
            ids = [r.task_id for r in src.tasks(flow, run_id, step)]
            if ids:
                hint = f"Step '{flow}/{run_id}/{step}' has the tasks: {', '.join(ids[:20])}."
            else:
                hint = f"Run '{flow}/{run_id}' has no step '{step}' (or it has not started)."
            raise HeadwaterNotFound(f"Task '{self.pathspec}' does not exist.", hint=hint)
        self._row = row
        if self._attempt is not None and self._attempt != row.attempt:
            if src.attempt(flow, run_id, step, task_id, self._attempt) is None:
                known = src.attempts(flow, run_id, step, task_id)
                raise HeadwaterNotFound(
                    f"Task '{self.pathspec}' has no attempt {self._attempt}.",
                    hint=f"Its attempts are: {', '.join(map(str, known)) or 'none recorded yet'}.",
                )

    # records ----------------------------------------------------------------------

    def _get_row(self) -> Any:
        if self._row is None:
            self._load()
            self._loaded = True
        return self._row

    @property
    def current_attempt(self) -> int:
        """The attempt this object reads (the latest unless one was asked for)."""
        return self._attempt if self._attempt is not None else self._get_row().attempt

    def _record_or_none(self) -> dict[str, Any] | None:
        """The attempt record, ``None`` while the attempt is still running."""
        if self._record is None:
            flow, run_id, step, task_id = self._components
            # Records are written once, so a record, once read, never goes stale.
            self._record = self._source.attempt(flow, run_id, step, task_id, self.current_attempt)
        return self._record

    def _killed(self) -> bool:
        """Whether the attempt never committed and never will: its run is no longer running."""
        if self._record_or_none() is not None:
            return False
        from ..meta.liveness import attempt_status

        flow, run_id = self._components[0], self._components[1]
        run = self._source.run(flow, run_id) or self._get_run_row()  # fresh: the run may have died since
        return attempt_status("running", run) == "killed"

    def _refs(self) -> dict[str, dict[str, Any]]:
        # A failed attempt keeps what its step set before failing (Metaflow shows it too).
        rec = self._record_or_none()
        return {} if rec is None else rec.get("artifacts") or {}

    def _public_names(self) -> list[str]:
        return sorted(n for n in self._refs() if not n.startswith("_"))

    def _no_artifact_message(self, name: str) -> str:
        rec = self._record_or_none()
        if rec is None and self._killed():
            why = f"attempt {self.current_attempt} was killed with its run before it committed, so it saved nothing"
        elif rec is None:
            why = f"attempt {self.current_attempt} has not finished yet"
        elif rec.get("status") == DAMAGED:
            why = f"attempt {self.current_attempt} cannot be read: {rec['damaged'].rstrip('.')}"
        else:
            names = self._public_names()
            why = f"its artifacts are: {', '.join(names) if names else '(none)'}"
            if rec.get("status") != "ok":
                exc = self.exception
                if exc is not None:
                    kind = exc.type.removeprefix("builtins.")
                    why += f" (attempt {self.current_attempt} failed: {kind}: {exc.message})"
        return f"Task '{self.pathspec}' has no artifact {name!r}: {why}."

    # the Task surface ---------------------------------------------------------------

    @property
    def data(self) -> TaskData:
        """The artifact values by attribute: ``task.data.x`` (loaded on first access)."""
        if self._data is None:
            self._data = TaskData(self)
        return self._data

    @property
    def artifacts(self) -> tuple[DataArtifact, ...]:
        """The public artifacts as a namedtuple of ``DataArtifact`` (``task.artifacts.x.data``)."""
        names = self._public_names()
        cls = namedtuple("Artifacts", names, rename=True)  # type: ignore[misc]
        return cls(*(self._artifact(n) for n in names))

    def _artifact(self, name: str) -> DataArtifact:
        return DataArtifact._make(self, name, attempt=self._attempt)

    def _child(self, child_id: str) -> DataArtifact:
        if child_id not in self._refs():
            raise ChildNotFound(
                f"DataArtifact '{self.pathspec}/{child_id}' does not exist.", hint=self._no_artifact_message(child_id)
            )
        return self._artifact(child_id)

    def __iter__(self) -> Iterator[DataArtifact]:
        """The public artifacts (``_private`` ones are readable by name only)."""
        return iter([self._artifact(n) for n in self._public_names()])

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._refs()

    @property
    def successful(self) -> bool:
        """Whether the attempt succeeded: ``False`` for a failure ``@catch`` caught, as in Metaflow."""
        rec = self._record_or_none()
        return rec is not None and rec.get("status") == "ok" and not rec.get("caught")

    @property
    def finished(self) -> bool:
        """Whether the attempt completed: its step succeeded or ``@catch`` handled its
        failure (then ``successful`` is ``False``); a failed attempt is not finished."""
        rec = self._record_or_none()
        return rec is not None and rec.get("status") == "ok"

    @property
    def status(self) -> str:
        """How the attempt stands (a headwater extension, as ``Run.status``).

        ``"running"``, ``"successful"``, ``"failed"`` (a failure ``@catch`` caught
        included), or ``"killed"``: the attempt never committed and its run is no
        longer running (kill -9 of the run process, a crash), so it never will.
        """
        rec = self._record_or_none()
        if rec is None:
            return "killed" if self._killed() else "running"
        return "successful" if self.successful else "failed"

    @property
    def exception(self) -> HeadwaterExceptionWrapper | None:
        """The exception a failed attempt raised, ``None`` otherwise (and for a failure ``@catch`` caught).

        As Metaflow's: a ``HeadwaterExceptionWrapper`` (alias ``MetaflowExceptionWrapper``)
        with ``.type`` (``module.Name``, e.g. ``builtins.ValueError``), ``.message`` (Metaflow:
        ``.exception``) and ``.stacktrace``; ``str()`` of it is the traceback. A process that
        died without committing gives a ``headwater.exceptions.TaskCrashed`` naming how it died
        (Metaflow: ``None``).
        """
        rec = self._record_or_none()
        if rec is None and self._killed():
            return HeadwaterExceptionWrapper(
                type=CRASH_TYPE,
                message=f"Attempt {self.current_attempt} was killed with its run: the run's process is gone and "
                        "the attempt never committed.",
                stacktrace="",
            )
        exc = rec.get("exception") if rec is not None else None
        if not exc:
            return None
        return HeadwaterExceptionWrapper(
            type=_full_type(str(exc.get("type") or "Exception")),
            message=str(exc.get("message", "")),
            stacktrace=str(exc.get("traceback") or ""),
        )

    @property
    def created_at(self) -> datetime | None:
        """When the attempt started."""
        rec = self._record_or_none()
        ts = rec.get("started_at") if rec is not None else self._get_row().started_at
        return to_datetime(ts)

    @property
    def finished_at(self) -> datetime | None:
        """When the attempt ended, ``None`` while it runs."""
        rec = self._record_or_none()
        return to_datetime(rec.get("finished_at")) if rec is not None else None

    @property
    def index(self) -> int | None:
        """The task's position in its innermost foreach, ``None`` outside a foreach."""
        rec = self._record_or_none()
        stack = (rec or {}).get("foreach_stack") or ()
        return stack[-1].get("index") if stack else None

    @property
    def metadata(self) -> list[Metadata]:
        """Everything recorded about the task, as ``Metadata(name, value, created_at, type, task)``.

        Every committed attempt's entries, oldest attempt first, in Metaflow's
        names and formats (string values): ``user``, ``runtime``,
        ``python_version``, ``headwater_version``, ``script-name``, ``ds-type``,
        ``ds-root``, ``attempt``, ``origin-run-id`` (``"None"`` unless the run
        is a resume), ``foreach-stack`` and ``foreach-execution-path`` in a
        foreach, and, once the attempt ended, ``attempt_ok`` (``"True"`` /
        ``"False"``) and ``attempt-done``. A task cloned by ``resume`` adds
        ``origin-task-id`` and ``origin-pathspec``. headwater adds ``status``,
        ``started_at`` and ``finished_at`` (epoch seconds). ``created_at`` is
        in milliseconds since the epoch.

        Examples
        --------
        >>> [m.name for m in task.metadata][:4]  # doctest: +SKIP
        ['user', 'runtime', 'python_version', 'headwater_version']
        """
        from .task_metadata import attempt_entries

        flow, run_id, step, task_id = self._components
        src = self._source
        run_rec = src.run_record(flow, run_id)
        out: list[Metadata] = []
        for n in src.attempts(flow, run_id, step, task_id):
            rec = self._record_or_none() if n == self.current_attempt else src.attempt(flow, run_id, step, task_id, n)
            if rec is not None:
                out += [Metadata(name, value, at, kind, self) for name, value, at, kind in
                        attempt_entries(rec, run_rec, src.root)]
        return out

    @property
    def metadata_dict(self) -> dict[str, Any]:
        """:attr:`metadata` by name (``{name: value}``)."""
        return {m.name: m.value for m in self.metadata}

    @property
    def origin_pathspec(self) -> str | None:
        """For a task cloned by ``resume``, the pathspec of its original; else ``None``."""
        rec = self._record_or_none() or {}
        origin = (rec.get("metadata") or {}).get("origin_pathspec")
        return origin if isinstance(origin, str) else None

    def _log(self, stream: str) -> bytes:
        if stream not in ("stdout", "stderr"):
            raise HeadwaterException(f"Unknown log stream {stream!r}: expected 'stdout' or 'stderr'.")
        flow, run_id, step, task_id = self._components
        return self._source.log(flow, run_id, step, task_id, self.current_attempt, stream)

    @property
    def stdout(self) -> str:
        """What the attempt printed to stdout (timestamps removed)."""
        from ..store.logs import strip_log

        return strip_log(self._log("stdout"))

    @property
    def stderr(self) -> str:
        """What the attempt printed to stderr (timestamps removed)."""
        from ..store.logs import strip_log

        return strip_log(self._log("stderr"))

    @property
    def stdout_size(self) -> int:
        """Size in bytes of :attr:`stdout` (UTF-8, timestamps removed)."""
        from ..store.logs import strip_log_bytes

        return len(strip_log_bytes(self._log("stdout")))

    @property
    def stderr_size(self) -> int:
        """Size in bytes of :attr:`stderr` (UTF-8, timestamps removed)."""
        from ..store.logs import strip_log_bytes

        return len(strip_log_bytes(self._log("stderr")))

    def loglines(
        self, stream: str, as_unicode: bool = True, meta_dict: dict[str, Any] | None = None
    ) -> Iterator[tuple[datetime | None, str | bytes]]:
        """The lines of a log with the time each was written.

        Parameters
        ----------
        stream : str
            ``"stdout"`` or ``"stderr"``.
        as_unicode : bool, default True
            Lines as ``str`` (UTF-8, invalid bytes replaced); ``False`` gives ``bytes``.
        meta_dict : dict, optional
            Accepted for Metaflow compatibility; unused.

        Returns
        -------
        Iterator[tuple[datetime or None, str or bytes]]
            ``(local time, line)`` per line, without the newline. Lines the
            task wrote below Python (C extensions, subprocesses) carry no
            timestamp: ``None``.

        Examples
        --------
        >>> for when, line in task.loglines("stdout"):  # doctest: +SKIP
        ...     print(when, line)
        """
        from ..store.logs import iter_log

        for ts, line in iter_log(self._log(stream)):
            yield to_datetime(ts), (line.decode("utf-8", "replace") if as_unicode else line)

    @property
    def code(self) -> Any:
        """The code package of the task's run (a ``HeadwaterCode``), or ``None`` if it stored none."""
        from .code import code_of_run

        return code_of_run(self._source, self._components[0], self._components[1])

    @property
    def parent_task_pathspecs(self) -> Iterator[str]:
        """Pathspecs of this task's parents, as Metaflow finds them: every task of each step
        before this one in the graph that sits in the same foreach iteration (so in a switch
        self-loop, every task of the loop step, this one included)."""
        from .lineage import parent_query

        return iter(self._lineage(parent_query, recorded=self._recorded_parents))

    @property
    def parent_tasks(self) -> Iterator[Task]:
        """The tasks :attr:`parent_task_pathspecs` names."""
        return iter([self._sibling(p) for p in self.parent_task_pathspecs])

    @property
    def child_task_pathspecs(self) -> Iterator[str]:
        """Pathspecs of this task's children, as Metaflow finds them: every task of each step
        after this one in the graph (each case of a switch) that sits in the same foreach
        iteration."""
        from .lineage import child_query

        return iter(self._lineage(child_query, recorded=self._recorded_children))

    def _lineage(self, query: Any, *, recorded: Any) -> list[str]:
        from .lineage import matches

        flow, run_id, step, _ = self._components
        info = self._graph_info()
        if info is None or step not in info["steps"]:
            return recorded()  # a run stored without its graph: follow the recorded inputs
        steps, pattern = query(info, step, self._execution_path(self._record_or_none()))
        src = self._source
        out: list[str] = []
        for name in steps:
            for row in src.tasks(flow, run_id, name):
                if matches(pattern, None if pattern == ".*" else
                           self._execution_path(src.attempt(flow, run_id, name, row.task_id, row.attempt))):
                    out.append(f"{flow}/{run_id}/{name}/{row.task_id}")
        return out

    @staticmethod
    def _execution_path(rec: dict[str, Any] | None) -> str | None:
        path = ((rec or {}).get("metadata") or {}).get("foreach-execution-path")
        return path if isinstance(path, str) and path else None

    def _graph_info(self) -> dict[str, Any] | None:
        from .lineage import run_graph_info

        flow, run_id = self._components[:2]
        return run_graph_info(self._source, flow, run_id)

    def _recorded_parents(self) -> list[str]:
        rec = self._record_or_none() or {}
        flow, run_id = self._components[:2]
        return [f"{flow}/{run_id}/{p}" for p in rec.get("input_paths") or () if p.split("/")[0] != PARAMETERS_STEP]

    def _recorded_children(self) -> list[str]:
        rec = self._record_or_none() or {}
        flow, run_id, step, task_id = self._components
        me = f"{step}/{task_id}"
        out: list[str] = []
        src = self._source
        for nxt in dict.fromkeys((rec.get("transition") or {}).get("next") or ()):
            for row in src.tasks(flow, run_id, nxt):
                child = src.attempt(flow, run_id, nxt, row.task_id, row.attempt) or {}
                if me in (child.get("input_paths") or ()):
                    out.append(f"{flow}/{run_id}/{nxt}/{row.task_id}")
        return out

    @property
    def child_tasks(self) -> Iterator[Task]:
        """The tasks that took this one as an input."""
        return iter([self._sibling(p) for p in self.child_task_pathspecs])

    def _sibling(self, pathspec: str) -> Task:
        """Another task of the same run, opened under this task's root and namespace."""
        run = self.parent.parent if self.parent is not None else None
        assert run is not None
        _, _, step, task_id = pathspec.split("/")
        return Task._make(Step._make(run, step), task_id)


class DataArtifact(HeadwaterObject):
    """One artifact of a task: its value, size and content key.

    Parameters
    ----------
    pathspec : str
        ``"FlowName/run_id/step_name/task_id/artifact_name"``.
    attempt : int, optional
        Which attempt of the task to read; default: the latest.

    Raises
    ------
    HeadwaterInvalidPathspec
        The pathspec does not have five components.
    HeadwaterNotFound
        There is no such task, or it has no such artifact.
    HeadwaterNamespaceMismatch
        The run exists but is outside the current namespace.
    """

    _KIND = "DataArtifact"
    _DEPTH = 5
    _CHILD_KIND = "none"

    _value: Any = None
    _has_value: bool = False

    def __init__(self, pathspec: str, attempt: int | None = None, *, _namespace_check: bool = True):
        self._open(pathspec, attempt, _namespace_check)

    def _reset_caches(self) -> None:
        self._value = None
        self._has_value = False

    def _task(self) -> Task:
        parent = self.parent
        assert isinstance(parent, Task)
        return parent

    def _load(self) -> None:
        task = self._task()
        try:
            task._get_row()
        except HeadwaterNotFound as e:
            raise HeadwaterNotFound(
                f"DataArtifact '{self.pathspec}' does not exist: {e.message[0].lower()}{e.message[1:]}", hint=e.hint
            ) from None
        if self.id not in task._refs():
            raise HeadwaterNotFound(
                f"DataArtifact '{self.pathspec}' does not exist.", hint=task._no_artifact_message(self.id)
            )

    def _ref(self) -> dict[str, Any]:
        self._ensure()
        return self._task()._refs()[self.id]

    def __iter__(self) -> Iterator[Any]:
        return iter(())

    def _child(self, child_id: str) -> Any:
        raise ChildNotFound(f"A DataArtifact has no children ({self.pathspec}/{child_id}).")

    @property
    def data(self) -> Any:
        """The artifact's value (loaded on first access, then kept)."""
        if not self._has_value:
            task = self._task()
            if self.id in task.data._values:
                self._value = task.data._values[self.id]
            else:
                self._value = self._source.load(self._ref())
            self._has_value = True
        return self._value

    def view(self) -> ArtifactView:
        """A view of the artifact that reads only what is indexed (beyond Metaflow).

        ``DataArtifact.view()[:1000]`` fetches and verifies just the chunks of a large
        numpy array that those rows live in (by ranged reads on S3); ``.load()`` on the
        view reads it whole. Any other artifact loads whole on first use.
        """
        if self._has_value:
            from ..store.views import ArtifactView

            return ArtifactView(value=self._value)
        return self._source.view(self._ref())

    @property
    def size(self) -> int:
        """The artifact's serialized size in bytes."""
        return int(self._ref().get("size", 0))

    @property
    def sha(self) -> str:
        """The artifact's content key (blake3 hex of its serialized bytes)."""
        return str(self._ref()["key"])

    @property
    def finished_at(self) -> datetime | None:
        """When the task that produced the artifact finished."""
        return self._task().finished_at

    @property
    def created_at(self) -> datetime | None:
        """When the artifact was stored (its task's end)."""
        return self._task().finished_at
