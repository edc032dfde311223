"""Flow and step mutators the Metaflow way (authoring layer; ``FlowMutator`` is public):
``MutableFlow`` and ``MutableStep`` let a mutator inspect a flow and add or
remove its decorators and parameters before a run.

``pre_mutate`` runs when the flow's command line is built (so added parameters
become options), ``mutate`` after ``--with`` decorators are attached; both run
once per process, flow mutators first, then step mutators in graph order.
"""

from __future__ import annotations

import enum
from typing import Any, Iterator

from .decorators import StepDecorator, parse_decospec
from .flow_decorators import FlowDecorator, add_flow_decorator, flow_decorators
from .user_decorators import (
    StepMutator,
    UserDecoratorError,
    UserStepDecoratorBase,
    UserStepDecoratorMeta,
    short_name,
)

_MUTATORS = "_hw_flow_mutators"
_DONE = "_hw_mutated"

Spec = tuple[str, str, list[Any], dict[str, Any]]


class Duplicates(enum.IntEnum):
    """What ``add_decorator`` does when the decorator is already there (Metaflow's values)."""

    IGNORE = 1  # keep the existing one
    ERROR = 2  # raise
    OVERRIDE = 3  # replace the existing one


class FlowMutator(metaclass=UserStepDecoratorMeta):
    """Change a flow before it runs: its parameters, flow decorators and steps (public, as in Metaflow).

    Apply it to the flow class (``@MyMutator`` or ``@MyMutator(args)``) and override
    ``pre_mutate(mutable_flow)`` and/or ``mutate(mutable_flow)``; arguments reach ``init``.

    Examples
    --------
    >>> class RetryAll(FlowMutator):
    ...     def mutate(self, mutable_flow):
    ...         for name, s in mutable_flow.steps:
    ...             s.add_decorator("retry", deco_kwargs={"times": 2})
    """

    _hw_kind = "flow"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._args = list(args)
        self._kwargs = dict(kwargs)
        self.statically_defined = True
        self._ran_init = False

    def __call__(self, flow_cls: Any) -> Any:
        from .spec import FlowSpec

        if not (isinstance(flow_cls, type) and issubclass(flow_cls, FlowSpec)):
            raise UserDecoratorError(
                f"@{type(self).__name__} is a flow mutator: put it on a FlowSpec subclass, not on {flow_cls!r}.",
                hint=f"Write @{type(self).__name__} on the line above 'class MyFlow(FlowSpec):'.")
        mutators = flow_cls.__dict__.get(_MUTATORS)
        if mutators is None:
            mutators = []
            type.__setattr__(flow_cls, _MUTATORS, mutators)
        mutators.append(self)
        return flow_cls

    external_init = UserStepDecoratorBase.external_init
    get_args_kwargs = UserStepDecoratorBase.get_args_kwargs

    @property
    def name(self) -> str:
        return short_name(type(self))

    def init(self, *args: Any, **kwargs: Any) -> None:
        """Receive the mutator's arguments (override instead of ``__init__``)."""

    def pre_mutate(self, mutable_flow: "MutableFlow") -> None:
        """Called when the command line is built: may add or remove parameters, flow decorators
        and step decorators."""

    def mutate(self, mutable_flow: "MutableFlow") -> None:
        """Called after ``--with`` is applied: may change the steps' decorators."""


def flow_mutators(flow_cls: type) -> list[FlowMutator]:
    """The flow mutators applied to ``flow_cls`` and its base flows, base first."""
    out: list[FlowMutator] = []
    for klass in reversed(flow_cls.__mro__):
        out.extend(klass.__dict__.get(_MUTATORS, ()))
    return out


def _is_step(value: Any) -> bool:
    return callable(value) and getattr(value, "is_step", False) is True


class _DecoratorQueries:
    """Lookups over ``decorator_specs`` (``(name, qualified name, args, kwargs)`` tuples)."""

    decorator_specs: Any

    def has_decorator(self, name: str) -> bool:
        """Whether there is a decorator called ``name`` (short or qualified)."""
        return bool(self.get_decorator_specs(name))

    def get_decorator_specs(self, name: str) -> list[Spec]:
        """The specs of the decorators called ``name`` (short or qualified)."""
        return [s for s in self.decorator_specs if _matches(s, name)]


class MutableFlow(_DecoratorQueries):
    """A flow as a mutator sees it (as in Metaflow)."""

    IGNORE = Duplicates.IGNORE
    ERROR = Duplicates.ERROR
    OVERRIDE = Duplicates.OVERRIDE

    def __init__(self, flow_cls: type, *, pre_mutate: bool, inserted_by: str) -> None:
        self._flow_cls = flow_cls
        self._pre_mutate = pre_mutate
        self._inserted_by = inserted_by

    @property
    def steps(self) -> Iterator[tuple[str, "MutableStep"]]:
        """``(name, MutableStep)`` for every step, by name."""
        for name in sorted(dir(self._flow_cls)):
            value = getattr(self._flow_cls, name, None)
            if _is_step(value):
                yield name, MutableStep(self, value, pre_mutate=self._pre_mutate, inserted_by=self._inserted_by)

    @property
    def parameters(self) -> Iterator[tuple[str, Any]]:
        """``(attribute name, Parameter)`` for every parameter."""
        from .parameters import Parameter

        for name in sorted(dir(self._flow_cls)):
            value = getattr(self._flow_cls, name, None)
            if isinstance(value, Parameter):
                yield name, value

    def add_parameter(self, name: str, value: Any, overwrite: bool = False) -> None:
        """Add (or with ``overwrite`` replace) the parameter ``name``; only in ``pre_mutate``."""
        self._only_pre("add a parameter")
        if hasattr(self._flow_cls, name) and not overwrite:
            raise UserDecoratorError(f"{self._inserted_by} adds parameter {name!r}, but the flow already has "
                                     f"an attribute {name!r}.", hint="Pass overwrite=True to replace it.")
        type.__setattr__(self._flow_cls, name, value)

    def remove_parameter(self, parameter_name: str) -> bool:
        """Remove the parameter ``parameter_name``; True if it existed. Only in ``pre_mutate``."""
        from .parameters import Parameter

        self._only_pre("remove a parameter")
        for klass in self._flow_cls.__mro__:
            if isinstance(klass.__dict__.get(parameter_name), Parameter):
                type.__delattr__(klass, parameter_name)
                return True
        return False

    @property
    def decorator_specs(self) -> Iterator[Spec]:
        """``(name, qualified name, args, kwargs)`` for every flow decorator."""
        for d in flow_decorators(self._flow_cls):
            yield (d.name, f"{type(d).__module__}.{type(d).__qualname__}", *d.get_args_kwargs())

    def add_decorator(self, deco_type: Any, deco_args: list[Any] | None = None,
                      deco_kwargs: dict[str, Any] | None = None,
                      duplicates: int = Duplicates.IGNORE) -> FlowDecorator | None:
        """Add a flow decorator (a class, its ``@name`` function, or a ``"name:k=v"`` string)."""
        self._only_pre("add a flow decorator")
        if deco_args:
            raise UserDecoratorError("Flow decorators take no positional arguments.")
        cls, attrs = _flow_decorator_type(deco_type)
        attrs.update(deco_kwargs or {})
        existing = [d for d in flow_decorators(self._flow_cls) if d.name == cls.name]
        if existing and not cls.allow_multiple:
            if duplicates == Duplicates.IGNORE:
                return None
            if duplicates == Duplicates.ERROR:
                raise UserDecoratorError(f"{self._inserted_by} adds @{cls.name}, but flow "
                                         f"{self._flow_cls.__name__!r} already has it.")
            self.remove_decorator(cls.name)
        deco = cls(attrs, statically_defined=False, inserted_by=self._inserted_by)
        add_flow_decorator(self._flow_cls, deco)
        return deco

    def remove_decorator(self, deco_name: str, deco_args: list[Any] | None = None,
                         deco_kwargs: dict[str, Any] | None = None) -> bool:
        """Remove the flow decorators matching ``deco_name`` (and the given arguments)."""
        self._only_pre("remove a flow decorator")
        kept, removed = [], False
        for klass in self._flow_cls.__mro__:
            decos = klass.__dict__.get("_hw_flow_decorators")
            if not decos:
                continue
            kept = [d for d in decos if not _spec_matches(d.name, type(d), d.get_args_kwargs(), deco_name,
                                                          deco_args, deco_kwargs)]
            removed = removed or len(kept) != len(decos)
            decos[:] = kept
        return removed

    def _only_pre(self, what: str) -> None:
        if not self._pre_mutate:
            raise UserDecoratorError(f"{self._inserted_by} tries to {what} in mutate().",
                                     hint="Do this in pre_mutate(); mutate() may only change the steps.")

    def __getattr__(self, name: str) -> "MutableStep":
        value = getattr(self._flow_cls, name, None)
        if _is_step(value):
            return MutableStep(self, value, pre_mutate=self._pre_mutate, inserted_by=self._inserted_by)
        raise AttributeError(f"Flow {self._flow_cls.__name__!r} has no step {name!r}.")


class MutableStep(_DecoratorQueries):
    """A step as a mutator sees it (as in Metaflow)."""

    IGNORE = Duplicates.IGNORE
    ERROR = Duplicates.ERROR
    OVERRIDE = Duplicates.OVERRIDE

    def __init__(self, flow: MutableFlow, step_func: Any, *, pre_mutate: bool, inserted_by: str) -> None:
        self._flow = flow
        self._func = step_func
        self._pre_mutate = pre_mutate
        self._inserted_by = inserted_by

    @property
    def flow(self) -> MutableFlow:
        """The flow this step belongs to."""
        return self._flow

    @property
    def name(self) -> str:
        return str(self._func.__name__)

    @property
    def decorator_specs(self) -> Iterator[Spec]:
        """``(name, qualified name, args, kwargs)`` for every decorator, user decorator and mutator."""
        for d in self._func.decorators:
            yield (d.name, f"{type(d).__module__}.{type(d).__qualname__}", *d.get_args_kwargs())
        seen: set[int] = set()
        for d in (*self._func.wrappers, *self._func.config_decorators):
            if id(d) not in seen:
                seen.add(id(d))
                yield (short_name(type(d)), type(d).decorator_name, *d.get_args_kwargs())

    def add_decorator(self, deco_type: Any, deco_args: list[Any] | None = None,
                      deco_kwargs: dict[str, Any] | None = None,
                      duplicates: int = Duplicates.IGNORE) -> Any:
        """Add a step decorator, user step decorator or (in ``pre_mutate``) step mutator.

        ``deco_type`` is the decorator (``retry``, a class) or its ``--with``
        spec string (``"retry:times=2"``). Returns the added decorator, or None
        when ``duplicates`` is ``IGNORE`` and the step already has it.
        """
        deco = _new_step_decorator(deco_type, list(deco_args or []), dict(deco_kwargs or {}))
        deco.statically_defined = False
        deco.inserted_by = self._inserted_by
        if isinstance(deco, StepMutator) and not self._pre_mutate:
            raise UserDecoratorError(f"{self._inserted_by} adds the step mutator @{deco.name} in mutate().",
                                     hint="Add step mutators in pre_mutate().")
        if isinstance(deco, UserStepDecoratorBase):
            field = getattr(self._func, deco._step_field)
            existing = [d for d in field if type(d) is type(deco)]
            allow_multiple = False
        else:
            field = self._func.decorators
            existing = [d for d in field if d.name == deco.name]
            allow_multiple = deco.allow_multiple
        if existing and not allow_multiple:
            if duplicates == Duplicates.IGNORE:
                return None
            if duplicates == Duplicates.ERROR:
                raise UserDecoratorError(f"{self._inserted_by} adds @{deco.name} to step {self.name!r}, "
                                         "which already has it.",
                                         hint="Use duplicates=MutableStep.OVERRIDE or IGNORE.")
            for d in existing:
                field.remove(d)
        field.append(deco)
        return deco

    def remove_decorator(self, deco_name: str, deco_args: list[Any] | None = None,
                         deco_kwargs: dict[str, Any] | None = None) -> bool:
        """Remove the step's decorators matching ``deco_name`` (and the arguments, if given)."""
        removed = False
        for field_name in ("decorators", "wrappers", "config_decorators"):
            field = getattr(self._func, field_name)
            keep = []
            for d in field:
                is_user = isinstance(d, UserStepDecoratorBase)
                short = short_name(type(d)) if is_user else d.name
                if _spec_matches(short, type(d), d.get_args_kwargs(), deco_name, deco_args, deco_kwargs):
                    if isinstance(d, StepMutator) and not self._pre_mutate:
                        raise UserDecoratorError(f"{self._inserted_by} removes the step mutator @{short} "
                                                 "in mutate().", hint="Remove step mutators in pre_mutate().")
                    removed = True
                else:
                    keep.append(d)
            field[:] = keep
        return removed

    def __repr__(self) -> str:
        return f"MutableStep({self.name!r})"


def _qualified(cls: type) -> str:
    return getattr(cls, "decorator_name", None) or f"{cls.__module__}.{cls.__qualname__}"


def _matches(spec: Spec, query: str) -> bool:
    return spec[1] == query if "." in query else spec[0] == query


def _spec_matches(short: str, cls: type, args_kwargs: tuple[list[Any], dict[str, Any]], query: str,
                  args: list[Any] | None, kwargs: dict[str, Any] | None) -> bool:
    if not _matches((short, _qualified(cls), [], {}), query):
        return False
    if args is None and kwargs is None:
        return True
    return args_kwargs == (list(args or []), dict(kwargs or {}))


def _new_step_decorator(deco_type: Any, args: list[Any], kwargs: dict[str, Any]) -> Any:
    if isinstance(deco_type, str):
        if ":" in deco_type and (args or kwargs):
            raise UserDecoratorError(f"add_decorator({deco_type!r}, ...) gives arguments twice.",
                                     hint="Give them in the string or in deco_args/deco_kwargs, not both.")
        if ":" in deco_type:
            return parse_decospec(deco_type)
        deco = parse_decospec(deco_type)
        if isinstance(deco, UserStepDecoratorBase):
            return type(deco)(*args, **kwargs)
        deco_type = type(deco)
    deco_type = getattr(deco_type, "deco_cls", deco_type)  # the @name function of a StepDecorator
    if isinstance(deco_type, type) and issubclass(deco_type, StepDecorator):
        if args:
            raise UserDecoratorError("Step decorators take no positional arguments.")
        return deco_type(kwargs).validate()
    if isinstance(deco_type, type) and issubclass(deco_type, UserStepDecoratorBase):
        return deco_type(*args, **kwargs)
    raise UserDecoratorError(f"add_decorator() cannot add {deco_type!r}.",
                             hint="Pass a step decorator, a user step decorator class or a '--with' spec string.")


def _flow_decorator_type(deco_type: Any) -> tuple[type[FlowDecorator], dict[str, Any]]:
    from .decorators import _SPLIT, _value

    attrs: dict[str, Any] = {}
    if isinstance(deco_type, str):
        name, _, rest = deco_type.partition(":")
        for item in _SPLIT.split(rest) if rest.strip() else ():
            key, _, raw = item.partition("=")
            attrs[key.strip()] = _value(raw.strip())
        cls = flow_decorator_class(name.strip())
        if cls is None:
            raise UserDecoratorError(f"There is no flow decorator called {name.strip()!r}.")
        return cls, attrs
    deco_type = getattr(deco_type, "deco_cls", deco_type)
    if isinstance(deco_type, type) and issubclass(deco_type, FlowDecorator):
        return deco_type, attrs
    raise UserDecoratorError(f"add_decorator() cannot add {deco_type!r} to a flow.",
                             hint="Pass a flow decorator class, its @name function or a name string.")


def flow_decorator_class(name: str) -> type[FlowDecorator] | None:
    """The flow decorator class called ``name``: defined in the flow's modules, else a plugin."""
    from ..plugins import PluginKind, find_plugin
    from .flow_decorators import CUSTOM_FLOW_DECORATORS

    cls = CUSTOM_FLOW_DECORATORS.get(name)
    if cls is None:
        found = find_plugin(PluginKind.FLOW_DECORATOR, name)
        if isinstance(found, type) and issubclass(found, FlowDecorator):
            cls = found
    return cls


def _step_funcs(flow_cls: type) -> list[Any]:
    return [getattr(flow_cls, n) for n in sorted(dir(flow_cls)) if _is_step(getattr(flow_cls, n, None))]


def run_mutators(flow_cls: type, stage: str) -> None:
    """Run every flow then step mutator's ``pre_mutate`` or ``mutate`` (``stage``), once per process."""
    done = flow_cls.__dict__.get(_DONE)
    if done is None:
        done = set()
        type.__setattr__(flow_cls, _DONE, done)
    if stage in done:
        return
    done.add(stage)
    pre = stage == "pre_mutate"
    for m in flow_mutators(flow_cls):
        m.external_init()
        getattr(m, stage)(MutableFlow(flow_cls, pre_mutate=pre, inserted_by=f"@{m.name}"))
    for func in _step_funcs(flow_cls):
        for m in list(func.config_decorators):
            m.external_init()
            by = f"@{m.name}"
            getattr(m, stage)(MutableStep(MutableFlow(flow_cls, pre_mutate=pre, inserted_by=by), func,
                                          pre_mutate=pre, inserted_by=by))
    if pre and "_hw_graph_cache" in flow_cls.__dict__:
        type.__delattr__(flow_cls, "_hw_graph_cache")  # parameters may have changed


def prepare_flow(flow_cls: type, decospecs: tuple[str, ...] | list[str]) -> None:
    """Everything that shapes a flow's decorators before a run: pre_mutate, ``--with``, mutate."""
    from .decorators import attach_decospecs

    run_mutators(flow_cls, "pre_mutate")
    done = flow_cls.__dict__.get(_DONE)
    if "with" not in done:
        done.add("with")
        attach_decospecs(flow_cls, decospecs)
    run_mutators(flow_cls, "mutate")


__all__ = ["Duplicates", "FlowMutator", "MutableFlow", "MutableStep", "flow_mutators", "prepare_flow",
           "run_mutators"]
