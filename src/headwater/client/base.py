"""What every client object shares (reading layer): pathspec parsing, the
source and namespace it was opened under, tags inherited from its run,
equality, pickling, and the not-found / namespace errors.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any, ClassVar

from ..exceptions import HeadwaterInvalidPathspec, HeadwaterNamespaceMismatch, HeadwaterNotFound
from ..store.records import unsafe_component
from .namespace import get_namespace
from .source import Source, current_root, root_exists, source_for


class ChildNotFound(HeadwaterNotFound, KeyError):
    """``obj[child_id]`` names no child: a ``HeadwaterNotFound`` that is also a ``KeyError``.

    Being a ``KeyError`` keeps the mapping protocol honest (``dict(...)``,
    ``in``, ``.get``-style helpers), as in Metaflow.
    """


# Shapes used in messages, indexed by depth.
SHAPES = {
    1: "FlowName",
    2: "FlowName/run_id",
    3: "FlowName/run_id/step_name",
    4: "FlowName/run_id/step_name/task_id",
    5: "FlowName/run_id/step_name/task_id/artifact_name",
}

_CLASSES: dict[int, type[HeadwaterObject]] = {}


def to_datetime(ts: float | None) -> datetime | None:
    """A record timestamp (seconds since the epoch) as a local naive ``datetime``."""
    return None if ts is None else datetime.fromtimestamp(ts)


def parse_pathspec(kind: str, depth: int, pathspec: Any) -> tuple[str, ...]:
    """Split ``pathspec`` into ``depth`` non-empty components or raise ``HeadwaterInvalidPathspec``."""
    if not isinstance(pathspec, str):
        raise HeadwaterInvalidPathspec(
            f"{kind}() expects a pathspec string '{SHAPES[depth]}', got {pathspec!r}.",
        )
    parts = tuple(pathspec.strip("/").split("/")) if pathspec.strip("/") else ()
    bad = next((p for p in parts if unsafe_component(p)), None)
    if bad is not None:
        raise HeadwaterInvalidPathspec(
            f"{kind}({pathspec!r}): the component {bad!r} {unsafe_component(bad)}.",
            hint="Each component is a flow name, run id, step name, task id or artifact name.",
        )
    if len(parts) != depth or any(not p for p in parts):
        n = len(parts)
        raise HeadwaterInvalidPathspec(
            f"{kind}({pathspec!r}): expected a pathspec '{SHAPES[depth]}' ({depth} component"
            f"{'s' if depth > 1 else ''}), got {n} component{'s' if n != 1 else ''}.",
            hint=_which_class_hint(n) if 1 <= n <= 5 and n != depth else None,
        )
    return parts


def _which_class_hint(n: int) -> str:
    names = {1: "Flow", 2: "Run", 3: "Step", 4: "Task", 5: "DataArtifact"}
    return f"A pathspec with {n} component{'s' if n != 1 else ''} names a {names[n]}: use {names[n]}(...)."


class HeadwaterObject:
    """Base of ``Flow``, ``Run``, ``Step``, ``Task`` and ``DataArtifact``.

    An object remembers the namespace and datastore root in effect when it was
    opened; the children it hands out inherit both.
    """

    _KIND: ClassVar[str] = "Object"
    _DEPTH: ClassVar[int] = 0
    _CHILD_KIND: ClassVar[str] = "child"

    _components: tuple[str, ...]
    _attempt: int | None
    _ns_check: bool
    _ns: str | None
    _root: str
    _src: Source | None
    _parent_obj: HeadwaterObject | None
    _run_row: Any
    _loaded: bool

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if cls._DEPTH:
            _CLASSES[cls._DEPTH] = cls

    def _open(self, pathspec: Any, attempt: int | None, namespace_check: bool) -> None:
        """Constructor body: parse, bind, check existence and namespace."""
        comps = parse_pathspec(self._KIND, self._DEPTH, pathspec)
        self._bind(comps, attempt=attempt, ns_check=namespace_check, ns=get_namespace(), root=current_root())
        self._load()
        self._loaded = True
        if namespace_check and not self.is_in_namespace():
            raise self._mismatch()

    def _bind(
        self,
        comps: tuple[str, ...],
        *,
        attempt: int | None,
        ns_check: bool,
        ns: str | None,
        root: str,
        parent: HeadwaterObject | None = None,
        run_row: Any = None,
    ) -> None:
        self._components = comps
        self._attempt = attempt
        self._ns_check = ns_check
        self._ns = ns
        self._root = root
        self._src = parent._src if parent is not None else None
        self._parent_obj = parent
        self._run_row = run_row
        self._loaded = False

    @classmethod
    def _make(cls, parent: HeadwaterObject, child_id: str, **fields: Any) -> Any:
        """A child of ``parent`` already known to exist (from a listing): no checks, no queries."""
        obj = cls.__new__(cls)
        obj._bind(
            (*parent._components, child_id),
            attempt=fields.pop("attempt", None),
            ns_check=parent._ns_check,
            ns=parent._ns,
            root=parent._root,
            parent=parent,
            run_row=fields.pop("run_row", parent._run_row),
        )
        for k, v in fields.items():
            setattr(obj, k, v)
        obj._loaded = True
        return obj

    def _child(self, child_id: str) -> Any:
        """``self[child_id]``, checked: exists, and in the namespace if this object checks it."""
        cls = _CLASSES[self._DEPTH + 1]
        if isinstance(child_id, str) and unsafe_component(child_id):
            raise ChildNotFound(
                f"{cls._KIND} '{self.pathspec}/{child_id}' does not exist: {child_id!r} {unsafe_component(child_id)}.",
            )
        obj = cls.__new__(cls)
        obj._bind(
            (*self._components, child_id),
            attempt=None,
            ns_check=self._ns_check,
            ns=self._ns,
            root=self._root,
            parent=self,
            run_row=self._run_row,
        )
        try:
            obj._load()
        except HeadwaterNotFound as e:
            raise ChildNotFound(e.message, hint=e.hint) from None
        obj._loaded = True
        if obj._ns_check and not obj.is_in_namespace():
            raise obj._mismatch()
        return obj

    # to be provided by subclasses ---------------------------------------------------

    def _load(self) -> None:
        """Fetch what the object needs to exist; raise ``HeadwaterNotFound`` if it does not."""
        raise NotImplementedError

    def __iter__(self) -> Iterator[Any]:
        raise NotImplementedError

    # plumbing -----------------------------------------------------------------------

    @property
    def _source(self) -> Source:
        if self._src is None:
            # An unpickled object reads its original root if it is here, else the current one.
            root = self._root if root_exists(self._root) else current_root()
            self._src = source_for(root)
        return self._src

    def _ensure(self) -> None:
        if not self._loaded:
            self._load()
            self._loaded = True

    def _get_run_row(self) -> Any:
        if self._run_row is None:
            flow, run_id = self._components[0], self._components[1]
            row = self._source.run(flow, run_id)
            if row is None:
                raise HeadwaterNotFound(
                    f"{self._KIND} '{self.pathspec}' does not exist: there is no run '{flow}/{run_id}'.",
                    hint=runs_hint(self._source, flow),
                )
            self._run_row = row
        return self._run_row

    def _mismatch(self) -> HeadwaterNamespaceMismatch:
        hint = "Call namespace(None) to see everything"
        users = sorted(t for t in self.system_tags if t.startswith("user:"))
        if users:
            hint += f", or namespace({users[0]!r}) to see the runs of that user"
        return HeadwaterNamespaceMismatch(
            f"{self._KIND} '{self.pathspec}' is not in the current namespace {self._ns!r}.",
            hint=hint + ".",
        )

    # the common surface --------------------------------------------------------------

    @property
    def id(self) -> str:
        """The last component of the pathspec (flow name, run id, step name, task id, artifact name)."""
        return self._components[-1]

    @property
    def pathspec(self) -> str:
        """The object's full path, e.g. ``'HelloFlow/1763841234567890/start/1'``."""
        return "/".join(self._components)

    @property
    def path_components(self) -> list[str]:
        """The pathspec split into its components."""
        return list(self._components)

    @property
    def parent(self) -> HeadwaterObject | None:
        """The object one level up (``None`` for a ``Flow``)."""
        if self._DEPTH <= 1:
            return None
        if self._parent_obj is None:
            cls = _CLASSES[self._DEPTH - 1]
            obj = cls.__new__(cls)
            obj._bind(
                self._components[:-1],
                attempt=self._attempt if cls._DEPTH == 4 else None,
                ns_check=False,  # this object already passed (or skipped) its check
                ns=self._ns,
                root=self._root,
                run_row=self._run_row,
            )
            obj._src = self._src
            self._parent_obj = obj
        return self._parent_obj

    @property
    def tags(self) -> frozenset[str]:
        """User and system tags of the run this object belongs to."""
        return self.user_tags | self.system_tags

    @property
    def user_tags(self) -> frozenset[str]:
        """Tags the user gave the run (``--tag``)."""
        if self._DEPTH < 2:
            return frozenset()
        return frozenset(self._get_run_row().tags or ())

    @property
    def system_tags(self) -> frozenset[str]:
        """Tags headwater gave the run (``user:``, ``runtime:``, ``python_version:``, ...)."""
        if self._DEPTH < 2:
            return frozenset()
        return frozenset(self._get_run_row().system_tags or ())

    @property
    def created_at(self) -> datetime | None:
        """When the object came into being."""
        raise NotImplementedError

    @property
    def origin_pathspec(self) -> str | None:
        """For a resumed run, the pathspec of the object this one was cloned from; else ``None``."""
        return None

    def is_in_namespace(self) -> bool:
        """Whether the object is visible in the namespace it was opened under.

        Returns
        -------
        bool
            ``True`` in the global namespace, or when the namespace is one of
            the run's tags or system tags.
        """
        if self._ns is None:
            return True
        return self._ns in self.tags

    def __getitem__(self, child_id: str) -> Any:
        return self._child(child_id)

    def __contains__(self, child_id: object) -> bool:
        if not isinstance(child_id, str):
            return False
        try:
            self._child(child_id)
        except (HeadwaterNotFound, HeadwaterNamespaceMismatch):
            return False
        return True

    def __repr__(self) -> str:
        if self._attempt is not None:
            return f"{type(self).__name__}('{self.pathspec}', attempt={self._attempt})"
        return f"{type(self).__name__}('{self.pathspec}')"

    def __str__(self) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, HeadwaterObject):
            return NotImplemented
        return type(self) is type(other) and self._components == other._components

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._components))

    def __getstate__(self) -> dict[str, Any]:
        return {
            "pathspec": self.pathspec,
            "attempt": self._attempt,
            "namespace_check": self._ns_check,
            "namespace": self._ns,
            "root": self._root,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        comps = tuple(state["pathspec"].split("/"))
        self._bind(
            comps,
            attempt=state.get("attempt"),
            ns_check=state.get("namespace_check", True),
            ns=state.get("namespace"),
            root=state.get("root") or current_root(),
        )
        self._reset_caches()

    def _reset_caches(self) -> None:
        """Clear per-object caches after unpickling (subclasses extend)."""


def runs_hint(src: Source, flow: str) -> str:
    """A hint naming the most recent runs of ``flow`` (or why there are none)."""
    rows = src.runs(flow, limit=5)
    if not rows:
        return flow_hint(src, flow)
    ids = ", ".join(r.run_id for r in rows)
    return f"The most recent runs of {flow!r} are: {ids} (datastore {src.root})."


def flow_hint(src: Source, flow: str) -> str:
    """A hint for a flow name that is not in the datastore."""
    if not src.exists:
        return (
            f"The datastore root {src.root} does not exist. Run the flow first, or point "
            "HEADWATER_DATASTORE_ROOT (or metadata('local@/path')) at the right datastore."
        )
    known = [f for f in src.flows() if f != flow]
    if not known:
        return (
            f"The datastore {src.root} holds no runs of any flow. Check the flow's name, or point "
            "HEADWATER_DATASTORE_ROOT (or metadata('local@/path')) at the right datastore."
        )
    return f"Flows in the datastore {src.root}: {', '.join(known)}."
