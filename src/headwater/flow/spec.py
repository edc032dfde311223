"""``FlowSpec``: the base class of every flow (authoring layer).

A flow instance inside a task holds three kinds of state: values the step set
(its ``__dict__``, persisted as artifacts), references to inherited artifacts
(loaded lazily on first read, then cached like a set value), and the task's
bookkeeping under ``_hw_*`` names (never persisted).
"""

from __future__ import annotations

import sys
from typing import Any, Callable, Iterator

from ..exceptions import (
    DataCorruptionError,
    DataMissingError,
    InvalidNextError,
    Location,
    MergeArtifactsError,
    MissingInMergeArtifactsException,
    ReadOnlyAttributeError,
    UnhandledInMergeArtifactsException,
)
from .parameters import Parameter

# Attributes of FlowSpec itself; never artifacts, never step names.
_INTERNAL_PREFIX = "_hw_"


class FlowSpecMeta(type):
    """Builds (lazily) and caches the static graph of each flow class."""

    @property
    def _graph(cls) -> Any:
        g = cls.__dict__.get("_hw_graph_cache")
        if g is None:
            from .graph import build_graph

            g = build_graph(cls)
            type.__setattr__(cls, "_hw_graph_cache", g)
        return g

    @property
    def _hw_constants(cls) -> frozenset[str]:
        """Names of the class-level constants, which steps may read but not assign."""
        names = cls.__dict__.get("_hw_constants_cache")
        if names is None:
            from .parameters import flow_constants

            names = frozenset(flow_constants(cls))
            type.__setattr__(cls, "_hw_constants_cache", names)
        return names

    @property
    def _hw_read_only(cls) -> frozenset[str]:
        """Names a step may not assign: the class-level constants and the Parameters."""
        names = cls.__dict__.get("_hw_read_only_cache")
        if names is None:
            params = {n for n in dir(cls) if isinstance(getattr(cls, n, None), Parameter)}
            names = cls._hw_constants | params
            type.__setattr__(cls, "_hw_read_only_cache", names)
        return names


class FlowSpec(metaclass=FlowSpecMeta):
    """Base class for flows: subclass it, add ``@step`` methods, and end the
    module with ``if __name__ == "__main__": MyFlow()``.

    Examples
    --------
    >>> from headwater import FlowSpec, step
    >>> class HelloFlow(FlowSpec):
    ...     @step
    ...     def start(self):
    ...         self.greeting = "hi"
    ...         self.next(self.end)
    ...     @step
    ...     def end(self):
    ...         print(self.greeting)
    """

    def __init__(self, use_cli: bool = True) -> None:
        self._hw_reset()
        if use_cli:
            from ..cli.flow_cli import main

            main(type(self), sys.argv[1:])

    # ---- internal state ----------------------------------------------------------------
    def _hw_reset(self) -> None:
        d = self.__dict__
        d["_hw_refs"] = {}  # name -> artifact ref (inherited, not yet loaded)
        d["_hw_loader"] = None  # callable(ref) -> value
        d["_hw_loaded"] = {}  # name -> value as loaded (to skip re-saving unchanged immutables)
        d["_hw_params"] = None
        d["_hw_transition"] = None
        d["_hw_foreach_stack"] = ()
        d["_hw_is_join"] = False

    def _hw_load_artifact(self, name: str) -> Any:
        d = self.__dict__
        refs = d.get("_hw_refs")
        if refs is None or name not in refs:
            raise AttributeError(
                f"Flow {type(self).__name__} has no attribute {name!r}"
                + (" (a join step sees only merged artifacts: call self.merge_artifacts(inputs))"
                   if d.get("_hw_is_join") else "")
            )
        try:
            value = d["_hw_loader"](refs[name])
        except (DataMissingError, DataCorruptionError) as e:
            raise type(e)(f"Cannot load artifact {name!r} (step {d.get('_hw_step_name')!r}): {e.message}",
                          hint=e.hint) from None
        d[name] = value
        d["_hw_loaded"][name] = value
        return value

    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup fails: inherited artifacts load here.
        if name.startswith("__") or name.startswith(_INTERNAL_PREFIX):
            raise AttributeError(name)
        return self._hw_load_artifact(name)

    def __setattr__(self, name: str, value: Any) -> None:
        cls = type(self)
        if name in cls._hw_read_only:
            param = getattr(cls, name, None)
            if getattr(param, "IS_CONFIG", False):
                what = f"the Config {param.name!r} (configs are read-only)"
            elif isinstance(param, Parameter):
                what = f"the Parameter {param.name!r}"
            else:
                what = "a class-level constant"
            raise _read_only(self, name, what, sys._getframe(1))
        object.__setattr__(self, name, value)

    def __iter__(self) -> Iterator[Callable[..., Any]]:
        """The flow's step functions, sorted by name (Metaflow's legacy ``for step in self``)."""
        cls = type(self)
        return iter([getattr(cls, name) for name in sorted(cls._graph.sorted_nodes)])

    def __delattr__(self, name: str) -> None:
        refs = self.__dict__.get("_hw_refs", {})
        found = False
        if name in refs:
            del refs[name]
            found = True
        if name in self.__dict__:
            del self.__dict__[name]
            found = True
        if not found:
            raise AttributeError(name)

    def __reduce__(self) -> Any:
        raise TypeError(
            f"A flow object ({type(self).__name__}) cannot be stored as an artifact; "
            "store the values you need instead (e.g. self.x = inputs[0].x)."
        )

    # ---- user API ----------------------------------------------------------------------
    @property
    def name(self) -> str:
        """The flow's class name."""
        return type(self).__name__

    @property
    def script_name(self) -> str:
        mod = sys.modules.get(type(self).__module__)
        return (getattr(mod, "__file__", None) or "").rsplit("/", 1)[-1]

    @property
    def input(self) -> Any:
        """The current foreach item (None outside a foreach), in any step inside it."""
        d = self.__dict__
        frames = d.get("_hw_foreach_stack", ())
        if "_hw_input" not in d or (d["_hw_input"] is None and frames):
            if not frames:
                return None
            try:
                d["_hw_input"] = self._hw_item(len(frames) - 1)
            except AttributeError:  # the foreach variable was deleted downstream
                return None
        return d["_hw_input"]

    def _hw_item(self, level: int) -> Any:
        """The item of foreach ``level``: read alone from its split's item table when the
        task knows where it is (``_hw_item_refs``), else taken from the foreach attribute."""
        d = self.__dict__
        refs = d.get("_hw_item_refs") or ()
        if level < len(refs) and refs[level] is not None:
            return d["_hw_item_loader"](refs[level])
        f = d["_hw_foreach_stack"][level]
        return nth_item(getattr(self, f.var), f.index)

    @property
    def index(self) -> int | None:
        """The current foreach index (None outside a foreach), in any step inside it."""
        frames = self.__dict__.get("_hw_foreach_stack", ())
        return frames[-1].index if frames else None

    def foreach_stack(self) -> list[tuple[int, int, Any]]:
        """``(index, num_splits, item)`` for each enclosing foreach, outermost first.

        Each level carries the item itself (``self.input`` at the innermost
        level), read from that level's foreach attribute as Metaflow does; a
        level whose attribute is gone (deleted downstream) gives ``None``.
        """
        frames = self.__dict__.get("_hw_foreach_stack", ())
        out = []
        for level, f in enumerate(frames):
            if level == len(frames) - 1:
                item = self.input
            else:
                try:
                    item = self._hw_item(level)
                except AttributeError:
                    item = None
            out.append((f.index, f.num_splits, item))
        return out

    def next(self, *steps: Callable[..., Any] | dict, foreach: str | None = None,
             condition: str | None = None, num_parallel: int | None = None) -> None:
        """Say where the flow goes after this step; must be the step's last statement.

        Forms: ``self.next(self.a)``, ``self.next(self.a, self.b)`` (static split),
        ``self.next(self.a, foreach="items")``,
        ``self.next({"x": self.a, "y": self.b}, condition="attr")`` (switch),
        ``self.next(self.train, num_parallel=4)`` (a gang of 4 tasks of a ``@parallel`` step).
        """
        if self.__dict__.get("_hw_transition") is not None:
            raise InvalidNextError("self.next() was called more than once in this step.",
                                   hint="Call self.next() exactly once, as the step's last statement.")
        if num_parallel is not None:
            if foreach is not None or condition is not None:
                raise InvalidNextError("num_parallel= cannot be combined with foreach= or condition=.")
            if len(steps) != 1 or isinstance(steps[0], dict):
                raise InvalidNextError("num_parallel= goes to exactly one step: self.next(self.train, num_parallel=4).")
            if isinstance(num_parallel, bool) or not isinstance(num_parallel, int) or num_parallel < 1:
                raise InvalidNextError(
                    f"num_parallel={num_parallel!r} must be a positive integer.",
                    hint="Pass the number of tasks to start together, e.g. num_parallel=4.",
                )
            self.__dict__["_hw_transition"] = ("parallel", [_step_name(steps[0])], num_parallel)
            return
        if condition is not None:
            if len(steps) != 1 or not isinstance(steps[0], dict):
                raise InvalidNextError("A switch needs one dict of cases: self.next({'a': self.a, ...}, condition='attr').")
            cases = {k: _step_name(v) for k, v in steps[0].items()}
            try:
                value = getattr(self, condition)
            except AttributeError:
                raise InvalidNextError(
                    f"Condition variable self.{condition} in step {self.__dict__.get('_hw_step_name', '?')!r} "
                    "does not exist.",
                    hint=f"Set self.{condition} in this step before calling self.next().") from None
            if value not in cases:  # Metaflow's error, raised where Metaflow raises it (in the step)
                raise RuntimeError(f"Switch condition variable '{condition}' has value '{value}' "
                                   f"which is not in the available cases: {list(cases)}")
            self.__dict__["_hw_transition"] = ("switch", cases, condition)
            return
        names = [_step_name(s) for s in steps]
        if foreach is not None:
            if len(names) != 1:
                raise InvalidNextError("A foreach goes to exactly one step: self.next(self.body, foreach='items').")
            self.__dict__["_hw_transition"] = ("foreach", names, foreach)
            return
        self.__dict__["_hw_transition"] = ("static", names, None)

    def merge_artifacts(self, inputs: "Inputs", exclude: list[str] | None = None,
                        include: list[str] | None = None) -> None:
        """Propagate artifacts of a join's inputs to this step.

        An artifact with the same value (same content key) in every input that
        has it is merged; one whose values differ must be set in the join
        before the call, or excluded, or the call fails naming it.
        """
        if not isinstance(inputs, Inputs):
            raise MergeArtifactsError("merge_artifacts() takes the join step's inputs.",
                                      hint="Call it in a join step: self.merge_artifacts(inputs).")
        if include and exclude:
            raise MergeArtifactsError("merge_artifacts() takes include= or exclude=, not both.")
        exclude_set = set(exclude or ())
        mine = self.__dict__
        seen: dict[str, dict] = {}
        conflicts: list[str] = []
        for inp in inputs:
            for name, ref in inp.__dict__["_hw_refs"].items():
                if include is not None and name not in include:
                    continue
                if name in exclude_set or name in mine or name in mine["_hw_refs"] or _is_param(type(self), name):
                    continue
                prev = seen.get(name)
                if prev is None:
                    seen[name] = ref
                elif prev["key"] != ref["key"] and name not in conflicts:
                    conflicts.append(name)
        if conflicts:
            raise UnhandledInMergeArtifactsException(
                "Step {!r} cannot merge artifact(s) {} : the branches set different values.".format(
                    getattr(self, "_hw_step_name", "?"), ", ".join(repr(c) for c in sorted(conflicts))),
                hint="Set them explicitly in the join before merge_artifacts(), or pass exclude=[...].",
            )
        if include:
            # Parameters and class-level constants are the same in every branch and
            # already visible in the join: naming them is allowed, as in Metaflow.
            shared = type(self)._hw_constants
            missing = [n for n in include if n not in seen and n not in mine and n not in mine["_hw_refs"]
                       and not _is_param(type(self), n) and n not in shared]
            if missing:
                raise MissingInMergeArtifactsException(
                    f"merge_artifacts(include=...) names artifact(s) no input has: {', '.join(map(repr, missing))}.",
                    hint="Check the names in include=.",
                )
        mine["_hw_refs"].update(seen)


def _read_only(flow: FlowSpec, name: str, what: str, frame: Any) -> ReadOnlyAttributeError:
    """The error for a step assigning ``self.<name>``, located at the assignment."""
    cls = type(flow).__name__
    step = flow.__dict__.get("_hw_step_name")
    where = f"Step {step!r}" if step else "The flow"
    return ReadOnlyAttributeError(
        f"{where} assigned self.{name}, but {name!r} is {what} of {cls}; "
        "flow level attributes and Parameters are not modifiable.",
        location=Location(frame.f_code.co_filename, frame.f_lineno) if frame is not None else None,
        hint=f"Store the new value under another name (self.my_{name.lower()} = ...)"
             + ("." if what.startswith("the Parameter") else
                f", or make {name!r} an artifact set in a step instead of a class attribute."),
    )


def nth_item(items: Any, i: int) -> Any:
    """The i-th item in iteration order: what a foreach split counted.

    Positional indexing only for true sequences; a dict yields its keys and a
    pandas Series its values, as iterating them does (``series[i]`` is by label).
    """
    if isinstance(items, (list, tuple, range, str)):
        return items[i]
    import itertools

    return next(itertools.islice(iter(items), i, None))


def _is_param(cls: type, name: str) -> bool:
    return isinstance(getattr(cls, name, None), Parameter)


def _step_name(target: Any) -> str:
    name = getattr(target, "__name__", None)
    if not callable(target) or not getattr(target, "is_step", False) or name is None:
        raise InvalidNextError(
            f"self.next() got {target!r}, which is not a step.",
            hint="Pass step methods, e.g. self.next(self.end).",
        )
    return name


class Inputs:
    """The ``inputs`` of a join: iterable, indexable, and ``inputs.<step>`` for static branches."""

    def __init__(self, flows: list[FlowSpec]) -> None:
        self._flows = flows

    def __iter__(self) -> Iterator[FlowSpec]:
        return iter(self._flows)

    def __len__(self) -> int:
        return len(self._flows)

    def __getitem__(self, i: int) -> FlowSpec:
        return self._flows[i]

    def __getattr__(self, name: str) -> FlowSpec:
        if name.startswith("_"):
            raise AttributeError(name)
        for f in self._flows:
            if f.__dict__.get("_hw_step_name") == name:
                return f
        raise AttributeError(f"This join has no input from step {name!r}.")
