"""The top of the client object tree (reading layer): ``Headwater`` (all flows),
``Flow``, ``Run`` and ``Step``. Listings come from the index; everything is
read lazily and newest first.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..exceptions import HeadwaterNamespaceMismatch, HeadwaterNotFound
from ..store.roots import normalize_root
from ..store.taskmeta import PARAMETERS_STEP
from .base import ChildNotFound, HeadwaterObject, flow_hint, runs_hint, to_datetime
from .namespace import get_namespace
from .source import source_for

if TYPE_CHECKING:
    from .code import HeadwaterCode
    from .task import Task, TaskData



class Headwater:
    """Every flow in the datastore that has a run in the current namespace.

    The equivalent of Metaflow's ``Metaflow`` object (also exported under
    that name).

    Examples
    --------
    >>> from headwater import Headwater
    >>> Headwater().flows  # doctest: +SKIP
    [Flow('HelloFlow'), Flow('TrainFlow')]
    """

    def __repr__(self) -> str:
        return "Headwater()"

    @property
    def flows(self) -> list[Flow]:
        """The flows with at least one run in the current namespace, most recently run first."""
        return list(self)

    def __iter__(self) -> Iterator[Flow]:
        src = source_for()
        ns = get_namespace()
        tags = (ns,) if ns is not None else ()
        latest: list[tuple[float, str]] = []
        for name in src.flows():
            rows = src.runs(name, tags=tags, limit=1)
            if rows:
                latest.append((rows[0].created_at or 0.0, name))
        latest.sort(reverse=True)
        for _, name in latest:
            flow = Flow.__new__(Flow)
            flow._bind((name,), attempt=None, ns_check=True, ns=ns, root=src.root)
            flow._src = src
            flow._loaded = True
            yield flow

    def __getitem__(self, name: str) -> Flow:
        try:
            return Flow(name)
        except HeadwaterNotFound as e:
            raise ChildNotFound(e.message, hint=e.hint) from None

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and any(f.id == name for f in self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headwater)

    def __hash__(self) -> int:
        return hash("Headwater")


class Flow(HeadwaterObject):
    """A flow: every run of one ``FlowSpec`` class.

    Parameters
    ----------
    pathspec : str
        The flow's name, e.g. ``"HelloFlow"``.

    Raises
    ------
    HeadwaterNotFound
        The datastore has no run of this flow at all.
    HeadwaterNamespaceMismatch
        The flow has runs, but none in the current namespace.

    Examples
    --------
    >>> run = Flow("HelloFlow").latest_successful_run  # doctest: +SKIP
    >>> run.data.message  # doctest: +SKIP
    'hi'
    """

    _KIND = "Flow"
    _DEPTH = 1
    _CHILD_KIND = "run"

    def __init__(self, pathspec: str, *, _namespace_check: bool = True):
        self._open(pathspec, None, _namespace_check)

    def _load(self) -> None:
        src = self._source
        flow = self._components[0]
        if src.runs(flow, limit=1):
            return
        try:
            if src.records is not None and list(src.records.runs(flow)):
                return
        except (KeyError, OSError):
            pass
        raise HeadwaterNotFound(f"Flow '{flow}' does not exist.", hint=flow_hint(src, flow))

    def _mismatch(self) -> HeadwaterNamespaceMismatch:
        return HeadwaterNamespaceMismatch(
            f"Flow '{self.id}' has no runs in the current namespace {self._ns!r}.",
            hint="Call namespace(None) to see everything, or namespace('user:<name>') for another user's runs.",
        )

    def _rows(self, tags: tuple[str, ...] = (), limit: int | None = None) -> list[Any]:
        if self._ns_check and self._ns is not None and self._ns not in tags:
            tags = (*tags, self._ns)
        return self._source.runs(self.id, tags=tags, limit=limit)

    def _run(self, row: Any) -> Run:
        return Run._make(self, row.run_id, run_row=row)

    def is_in_namespace(self) -> bool:
        """Whether the flow has at least one run in the namespace it was opened under.

        Returns
        -------
        bool
            ``True`` in the global namespace, or when any run is tagged with the namespace.
        """
        if self._ns is None:
            return True
        return bool(self._source.runs(self.id, tags=(self._ns,), limit=1))

    def __iter__(self) -> Iterator[Run]:
        """The runs in the namespace, newest first."""
        for row in self._rows():
            yield self._run(row)

    def runs(self, *tags: str) -> Iterator[Run]:
        """The runs in the namespace that carry every one of ``tags``, newest first.

        Parameters
        ----------
        *tags : str
            Tags (user or system) a run must all have.

        Returns
        -------
        Iterator[Run]
        """
        return iter([self._run(row) for row in self._rows(tuple(tags))])

    @property
    def latest_run(self) -> Run | None:
        """The newest run in the namespace (finished or not), or ``None``."""
        rows = self._rows(limit=1)
        return self._run(rows[0]) if rows else None

    @property
    def latest_successful_run(self) -> Run | None:
        """The newest successful run in the namespace, or ``None``."""
        for run in self:
            if run.successful:
                return run
        return None

    @property
    def created_at(self) -> datetime | None:
        """When the flow's first run started."""
        rows = self._source.runs(self.id)
        return to_datetime(rows[-1].created_at) if rows else None

    @property
    def tags(self) -> frozenset[str]:
        """A flow has no tags of its own (always empty)."""
        return frozenset()


class Run(HeadwaterObject):
    """One run of a flow.

    Parameters
    ----------
    pathspec : str
        ``"FlowName/run_id"``.

    Raises
    ------
    HeadwaterInvalidPathspec
        The pathspec does not have two components.
    HeadwaterNotFound
        There is no such run.
    HeadwaterNamespaceMismatch
        The run exists but is outside the current namespace.

    Examples
    --------
    >>> run = Run("HelloFlow/1763841234567890")  # doctest: +SKIP
    >>> run.successful, run.data.message  # doctest: +SKIP
    (True, 'hi')
    """

    _KIND = "Run"
    _DEPTH = 2
    _CHILD_KIND = "step"

    def __init__(self, pathspec: str, *, _namespace_check: bool = True):
        self._open(pathspec, None, _namespace_check)

    def _load(self) -> None:
        flow, run_id = self._components
        row = self._source.run(flow, run_id)
        if row is None:
            raise HeadwaterNotFound(f"Run '{flow}/{run_id}' does not exist.", hint=runs_hint(self._source, flow))
        self._run_row = row

    def _fresh_row(self) -> Any:
        """The run's row as it is now (status and end time change while it runs)."""
        row = self._source.run(*self._components)
        if row is not None:
            self._run_row = row
        return self._get_run_row()

    def _step_names(self) -> list[str]:
        """Step names, newest first (by the start of each step's first task)."""
        return self._source.steps(*self._components)[::-1]

    def steps(self, *tags: str) -> Iterator[Step]:
        """The run's steps, newest first (``_parameters`` excluded).

        Parameters
        ----------
        *tags : str
            Tags the run must all have; otherwise no steps are returned
            (steps carry their run's tags).

        Returns
        -------
        Iterator[Step]
        """
        if not set(tags) <= self.tags:
            return iter([])
        return iter([Step._make(self, name) for name in self._step_names() if name != PARAMETERS_STEP])

    def __iter__(self) -> Iterator[Step]:
        """The run's steps, newest first, without the ``_parameters`` pseudo-step."""
        return self.steps()

    @property
    def created_at(self) -> datetime | None:
        """When the run started."""
        return to_datetime(self._get_run_row().created_at)

    @property
    def origin_pathspec(self) -> str | None:
        """The run this one resumed (``'Flow/run_id'``), or ``None``."""
        origin = getattr(self._get_run_row(), "origin_run_id", None)
        return f"{self._components[0]}/{origin}" if origin else None

    @property
    def end_task(self) -> Task | None:
        """The task of the run's end step, or ``None`` if it has not run."""
        end = self._get_run_row().end_step or "end"
        rows = self._source.tasks(self._components[0], self._components[1], end)
        if not rows:
            return None
        step = Step._make(self, end)
        return step._task(rows[0])

    @property
    def data(self) -> TaskData | None:
        """The artifacts of the end task (``run.data.x``), or ``None`` if the end step has not run."""
        task = self.end_task
        return task.data if task is not None else None

    @property
    def successful(self) -> bool:
        """Whether the run's end task succeeded (as in Metaflow; see :attr:`status`)."""
        if self._fresh_row().status == "failed":
            return False
        task = self.end_task
        return task is not None and task.successful

    @property
    def finished(self) -> bool:
        """Whether the run's end task completed, as in Metaflow: a run that failed
        before its end step is not finished (:attr:`status` tells it ``"failed"``)."""
        task = self.end_task
        return task is not None and task.finished

    @property
    def finished_at(self) -> datetime | None:
        """When the end task ended (as in Metaflow), or ``None`` if the end step has not run."""
        task = self.end_task
        return task.finished_at if task is not None else None

    @property
    def status(self) -> str:
        """How the run stands (a headwater extension, not in Metaflow).

        ``"running"``, ``"successful"``, ``"failed"``, or ``"killed"``: the run
        never ended and its process, on this host, is gone (kill -9, crash).
        A killed run is neither ``finished`` nor ``successful``.
        """
        from ..meta.liveness import run_status

        return run_status(self._fresh_row())

    @property
    def code(self) -> HeadwaterCode | None:
        """The run's code package, or ``None`` if the run stored none (see ``HEADWATER_CODE_PACKAGE``)."""
        from .code import code_of_run

        return code_of_run(self._source, *self._components)

    # tags ---------------------------------------------------------------------------

    def add_tag(self, tag: str) -> None:
        """Add one user tag to the run.

        Parameters
        ----------
        tag : str
            A non-empty string of at most 500 characters.

        Raises
        ------
        HeadwaterTaggingError
            The tag is invalid.

        Examples
        --------
        >>> run.add_tag("reviewed")  # doctest: +SKIP
        >>> "reviewed" in run.user_tags  # doctest: +SKIP
        True
        """
        self.add_tags([tag])

    def add_tags(self, tags: Iterable[str]) -> None:
        """Add user tags to the run (tags it already has are kept once).

        Parameters
        ----------
        tags : iterable of str
            The tags to add.

        Raises
        ------
        HeadwaterTaggingError
            A tag is invalid, or the run would have more than 50 user tags.
        """
        from .tagging import change_tags

        change_tags(self, tags, (), what="add_tags()")

    def remove_tag(self, tag: str) -> None:
        """Remove one user tag from the run (a tag it does not have is ignored).

        Parameters
        ----------
        tag : str
            The tag to remove.

        Raises
        ------
        HeadwaterTaggingError
            ``tag`` is a system tag (those cannot be removed).
        """
        self.remove_tags([tag])

    def remove_tags(self, tags: Iterable[str]) -> None:
        """Remove user tags from the run.

        Parameters
        ----------
        tags : iterable of str
            The tags to remove.

        Raises
        ------
        HeadwaterTaggingError
            One of ``tags`` is a system tag.
        """
        from .tagging import change_tags

        change_tags(self, (), tags, what="remove_tags()")

    def replace_tag(self, tag_to_remove: str, tag_to_add: str) -> None:
        """Replace one user tag by another, atomically.

        Parameters
        ----------
        tag_to_remove : str
            The tag to remove (must not be a system tag).
        tag_to_add : str
            The tag to add.
        """
        self.replace_tags([tag_to_remove], [tag_to_add])

    def replace_tags(self, tags_to_remove: Iterable[str], tags_to_add: Iterable[str]) -> None:
        """Remove some user tags and add others in one change: other readers see
        either the old tags or the new ones, never a mix.

        Parameters
        ----------
        tags_to_remove : iterable of str
            User tags to remove (a system tag raises).
        tags_to_add : iterable of str
            Tags to add; a tag in both lists stays.

        Raises
        ------
        HeadwaterTaggingError
            A tag is invalid or a system tag is to be removed.
        """
        from .tagging import change_tags

        change_tags(self, tags_to_add, tags_to_remove, what="replace_tags()")

    @property
    def trigger(self) -> None:
        """What triggered the run (event triggering is not supported yet: ``None``)."""
        return None


class Step(HeadwaterObject):
    """One step of a run: all the tasks that ran it (several in a foreach).

    Parameters
    ----------
    pathspec : str
        ``"FlowName/run_id/step_name"``.

    Raises
    ------
    HeadwaterInvalidPathspec
        The pathspec does not have three components.
    HeadwaterNotFound
        There is no such run or step.
    HeadwaterNamespaceMismatch
        The run exists but is outside the current namespace.
    """

    _KIND = "Step"
    _DEPTH = 3
    _CHILD_KIND = "task"

    def __init__(self, pathspec: str, *, _namespace_check: bool = True):
        self._open(pathspec, None, _namespace_check)

    def _load(self) -> None:
        flow, run_id, step = self._components
        self._get_run_row()
        src = self._source
        if src.tasks(flow, run_id, step) or step in src.steps(flow, run_id):
            return
        known = [s for s in src.steps(flow, run_id) if s != PARAMETERS_STEP]
        raise HeadwaterNotFound(
            f"Step '{self.pathspec}' does not exist.",
            hint=f"Run '{flow}/{run_id}' has the steps: {', '.join(known) or '(none yet)'}.",
        )

    def _rows(self) -> list[Any]:
        return self._source.tasks(*self._components)

    def _task(self, row: Any) -> Task:
        from .task import Task

        return Task._make(self, row.task_id, _row=row)

    def __iter__(self) -> Iterator[Task]:
        """The step's tasks, newest first."""
        for row in self._rows():
            yield self._task(row)

    def tasks(self, *tags: str) -> Iterator[Task]:
        """The step's tasks, newest first.

        Parameters
        ----------
        *tags : str
            Tags the run must all have; otherwise no tasks are returned
            (tasks carry their run's tags).

        Returns
        -------
        Iterator[Task]
        """
        if not set(tags) <= self.tags:
            return iter([])
        return iter([self._task(row) for row in self._rows()])

    @property
    def task(self) -> Task | None:
        """One task of the step (the newest); handy for steps that ran once."""
        rows = self._rows()
        return self._task(rows[0]) if rows else None

    @property
    def control_task(self) -> Task | None:
        """The control task of a ``@parallel`` step (its node 0), or ``None`` for other steps.

        Examples
        --------
        >>> run["train"].control_task.id  # doctest: +SKIP
        '2'
        """
        return next(self.control_tasks(), None)

    def control_tasks(self, *tags: str) -> Iterator[Task]:
        """The control tasks of a ``@parallel`` step (one per gang), newest first.

        Parameters
        ----------
        *tags : str
            Tags the task must all have.

        Returns
        -------
        Iterator[Task]
        """
        from ..store.taskmeta import CONTROL_TASK, TASK_TYPE_KEY

        for task in self.tasks(*tags):
            rec = task._record_or_none() or {}
            if (rec.get("metadata") or {}).get(TASK_TYPE_KEY) == CONTROL_TASK:
                yield task

    @property
    def created_at(self) -> datetime | None:
        """When the step's first task started."""
        times = [r.started_at for r in self._rows() if r.started_at is not None]
        return to_datetime(min(times)) if times else None

    @property
    def finished_at(self) -> datetime | None:
        """When the step's last task finished (``None`` while a task is still running)."""
        rows = self._rows()
        if not rows or any(r.finished_at is None for r in rows):
            return None
        return to_datetime(max(r.finished_at for r in rows))

    def _any_record(self) -> dict[str, Any] | None:
        for task in self:
            rec = task._record_or_none()
            if rec is not None:
                return rec
        return None

    @property
    def parent_steps(self) -> Iterator[Step]:
        """The steps before this one in the run's graph that have run (a loop step is its own parent).

        As Metaflow's (which reads the graph stored with the run); a step the run never
        reached (another case of a switch) is left out, where Metaflow's raises.
        """
        from .lineage import previous_steps

        info = self._graph_info()
        if info is None:  # a run stored without its graph: the steps its tasks read from
            rec = self._any_record() or {}
            names = _unique(p.split("/")[0] for p in rec.get("input_paths") or ())
        else:
            names = previous_steps(info, self.id)
        return self._started(n for n in names if n != PARAMETERS_STEP)

    @property
    def child_steps(self) -> Iterator[Step]:
        """The steps after this one in the run's graph that have run (each case of a switch that ran)."""
        info = self._graph_info()
        if info is None:  # a run stored without its graph: the steps its tasks went to
            rec = self._any_record() or {}
            names = (rec.get("transition") or {}).get("next") or ()
        else:
            names = info["steps"].get(self.id, {}).get("next") or ()
        return self._started(names)

    def _graph_info(self) -> dict[str, Any] | None:
        from .lineage import run_graph_info

        flow, run_id = self._components[:2]
        info = run_graph_info(self._source, flow, run_id)
        return info if info is not None and self.id in info["steps"] else None

    def _started(self, names: Any) -> Iterator[Step]:
        run = self.parent
        assert isinstance(run, Run)
        src = self._source
        flow, run_id = self._components[:2]
        return iter([Step._make(run, n) for n in _unique(names) if src.tasks(flow, run_id, n)])


def _unique(items: Any) -> list[str]:
    seen: dict[str, None] = {}
    for x in items:
        seen.setdefault(x, None)
    return list(seen)


def open_run(pathspec: str, root: str) -> Run:
    """Internal: ``Run(pathspec)`` read from the store at ``root``, in the global namespace.

    For code that knows exactly which store a run went to (the Runner's
    ``ExecutingRun.run``), whatever the current directory or namespace.
    """
    from .base import parse_pathspec

    run = Run.__new__(Run)
    run._bind(parse_pathspec("Run", 2, pathspec), attempt=None, ns_check=False, ns=None,
              root=normalize_root(root))
    run._load()
    run._loaded = True
    return run
