"""Step decorators (``@retry``, ``@catch``, ``@timeout``, ``@environment``, ``@resources``)
and ``--with`` decospecs.

A decorator is a small object holding validated attributes; it is attached to
the step function (``func.decorators``). What it means at run time is decided
once per step by ``step_policy`` (the scheduler's view: retries, timeout,
environment, resources) and by the executor (``@catch``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from ..exceptions import HeadwaterException


class InvalidDecoratorAttribute(HeadwaterException):
    """A decorator was given an attribute it does not have, or a bad value."""

    headline = "Invalid decorator attribute"


class UnknownDecoratorError(HeadwaterException):
    """``--with`` named a decorator that does not exist."""

    headline = "Unknown decorator"
    exit_code = 2


class StepDecorator:
    """Base class of step decorators: ``name``, ``defaults``, validated ``attributes``."""

    name = ""
    defaults: dict[str, Any] = {}
    allow_multiple = False

    def __init__(self, attributes: dict[str, Any] | None = None, statically_defined: bool = True) -> None:
        # Validation waits for validate(): a mistake in @retry(...) found while the
        # flow module is still being imported could not be reported without a traceback.
        self._given = dict(attributes or {})
        self.attributes = dict(self.defaults)
        self.statically_defined = statically_defined
        self._valid = False

    def validate(self) -> "StepDecorator":
        """Check the attributes (``InvalidDecoratorAttribute`` naming the bad one); idempotent."""
        if self._valid:
            return self
        for key, value in self._given.items():
            if key not in self.defaults:
                known = ", ".join(sorted(self.defaults)) or "none"
                raise InvalidDecoratorAttribute(
                    f"@{self.name} has no attribute {key!r}.",
                    hint=f"Attributes of @{self.name}: {known}.",
                )
            self.attributes[key] = value
        self.init()
        self._valid = True
        return self

    def init(self) -> None:
        """Validate attributes (override)."""

    def step_init(self, flow_cls: type, graph: Any, step_name: str, decorators: list["StepDecorator"]) -> None:
        """Check rules that involve the step's other decorators (override); runs before the run starts."""

    # Task-side hooks, called by the executor in the task process with a
    # ``TaskHookContext`` (headwater.runtime.executor): ``flow`` (the FlowSpec
    # instance), ``spec`` (the TaskSpec), ``graph``, ``datastore``, ``record``
    # (the committed attempt record, in task_finished) and ``ok``. A hook that
    # raises fails the task (task_pre_step) or is reported and ignored
    # (task_finished, which runs after the commit).
    def task_pre_step(self, ctx: Any) -> None:
        """Before the step function runs (``current`` is set)."""

    def task_finished(self, ctx: Any) -> None:
        """After the attempt record is committed, success or failure."""

    def spec(self) -> str:
        """This decorator as a ``--with`` decospec string."""
        if not self.attributes:
            return self.name
        return self.name + ":" + ",".join(f"{k}={json.dumps(v)}" for k, v in self.attributes.items())

    def __repr__(self) -> str:
        return f"@{self.spec()}"


def _number(deco: StepDecorator, key: str, *, minimum: float = 0, integer: bool = False) -> float:
    value = deco.attributes[key]
    try:
        num = int(value) if integer else float(value)
        if integer and float(value) != num:
            raise ValueError(value)
    except (TypeError, ValueError):
        kind = "an integer" if integer else "a number"
        raise InvalidDecoratorAttribute(f"@{deco.name}({key}={value!r}): {key} must be {kind}.") from None
    if num < minimum:
        raise InvalidDecoratorAttribute(f"@{deco.name}({key}={value!r}): {key} must be at least {minimum}.")
    deco.attributes[key] = num
    return num


class RetryDecorator(StepDecorator):
    """Re-run a failed attempt ``times`` more times; locally at once, unless
    ``minutes_between_retries`` is given (then that far apart)."""

    name = "retry"
    defaults = {"times": 3, "minutes_between_retries": 2}

    def init(self) -> None:
        _number(self, "times", integer=True)
        _number(self, "minutes_between_retries")


class CatchDecorator(StepDecorator):
    """On the final failure, store the exception in ``var`` and continue."""

    name = "catch"
    defaults = {"var": None, "print_exception": True}

    def init(self) -> None:
        var = self.attributes["var"]
        if var is not None and (not isinstance(var, str) or not var.isidentifier()):
            raise InvalidDecoratorAttribute(f"@catch(var={var!r}): var must be an attribute name.")


class TimeoutDecorator(StepDecorator):
    """Kill the task after ``seconds + 60*minutes + 3600*hours``."""

    name = "timeout"
    defaults = {"seconds": 0, "minutes": 0, "hours": 0}

    def init(self) -> None:
        total = sum(_number(self, k) * m for k, m in (("seconds", 1), ("minutes", 60), ("hours", 3600)))
        if total <= 0:
            raise InvalidDecoratorAttribute("@timeout needs a positive duration (seconds=, minutes= or hours=).")
        self.total_seconds = total


class EnvironmentDecorator(StepDecorator):
    """Environment variables for this step's tasks only."""

    name = "environment"
    defaults: dict[str, Any] = {"vars": {}}

    def init(self) -> None:
        v = self.attributes["vars"]
        if not isinstance(v, dict):
            raise InvalidDecoratorAttribute("@environment(vars=...) takes a dict of names to values.")
        self.attributes["vars"] = {str(k): str(val) for k, val in v.items()}


class ResourcesDecorator(StepDecorator):
    """What a task needs: the local scheduler admits it only when the machine can hold it."""

    name = "resources"
    defaults = {"cpu": 1, "gpu": None, "memory": 4096, "disk": None, "shared_memory": None}

    def init(self) -> None:
        _number(self, "cpu")
        _number(self, "memory")
        if self.attributes["gpu"] is not None:
            _number(self, "gpu", integer=True)


DECORATORS: dict[str, type[StepDecorator]] = {
    d.name: d for d in (RetryDecorator, CatchDecorator, TimeoutDecorator, EnvironmentDecorator, ResourcesDecorator)
}
# Decorators whose code lives in an optional or heavier module, imported on first use.
LAZY_DECORATORS: dict[str, str] = {"card": "headwater.cards.decorator:CardDecorator"}


def decorator_class(name: str) -> type[StepDecorator] | None:
    """The decorator class called ``name`` (importing it if it is lazy), or None."""
    cls = DECORATORS.get(name)
    if cls is None and name in LAZY_DECORATORS:
        import importlib

        mod, _, attr = LAZY_DECORATORS[name].partition(":")
        cls = DECORATORS[name] = getattr(importlib.import_module(mod), attr)
    return cls


def _make(cls: type[StepDecorator]) -> Callable[..., Any]:
    def decorator(f: Any = None, **attributes: Any) -> Any:
        def attach(func: Any) -> Any:
            if not getattr(func, "is_step", False):
                raise HeadwaterException(
                    f"@{cls.name} must be placed above @step (on {getattr(func, '__name__', func)!r}).",
                    hint=f"Write @{cls.name} on the line above @step.",
                )
            add_decorator(func, cls(attributes))
            return func

        if f is not None:
            if attributes or not callable(f):
                raise TypeError(f"Use @{cls.name} or @{cls.name}(key=value, ...).")
            return attach(f)
        return attach

    decorator.__name__ = cls.name
    decorator.__doc__ = cls.__doc__
    return decorator


def add_decorator(func: Any, deco: StepDecorator) -> None:
    """Attach ``deco`` to a step function (refusing a duplicate unless allowed)."""
    existing = [d for d in func.decorators if d.name == deco.name]
    if existing and not deco.allow_multiple:
        raise HeadwaterException(
            f"Step {func.__name__!r} has @{deco.name} twice.", hint=f"Keep one @{deco.name}."
        )
    func.decorators.append(deco)


retry = _make(RetryDecorator)
catch = _make(CatchDecorator)
timeout = _make(TimeoutDecorator)
environment = _make(EnvironmentDecorator)
resources = _make(ResourcesDecorator)

_SPLIT = re.compile(r",(?=\s*[A-Za-z_][A-Za-z0-9_]*\s*=)")


def parse_decospec(spec: str) -> StepDecorator:
    """``name[:k=v,k2=json]`` → a decorator (values JSON, else int, else float, else str)."""
    name, _, rest = spec.partition(":")
    name = name.strip()
    cls = decorator_class(name)
    if cls is None:
        raise UnknownDecoratorError(
            f"--with {spec!r}: there is no step decorator called {name!r}.",
            hint=f"Available: {', '.join(sorted(set(DECORATORS) | set(LAZY_DECORATORS)))}.",
        )
    attrs: dict[str, Any] = {}
    if rest.strip():
        for item in _SPLIT.split(rest):
            key, eq, raw = item.partition("=")
            if not eq:
                raise InvalidDecoratorAttribute(f"--with {spec!r}: expected key=value, got {item!r}.")
            attrs[key.strip()] = _value(raw.strip())
    return cls(attrs, statically_defined=False).validate()


def _value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        pass
    for conv in (int, float):
        try:
            return conv(raw)
        except ValueError:
            pass
    return raw


def attach_decospecs(flow_cls: type, specs: tuple[str, ...] | list[str]) -> None:
    """Attach ``--with`` decorators to every step that does not already have one of that name."""
    for spec in specs:
        for name in flow_cls._graph.sorted_nodes:
            func = getattr(flow_cls, name)
            deco = parse_decospec(spec)
            if any(d.name == deco.name for d in func.decorators):
                continue
            func.decorators.append(deco)


@dataclass(frozen=True)
class StepPolicy:
    """What the scheduler needs to know about a step, decided once per run."""

    retries: int = 0  # user-code retries (@retry times)
    retry_delay: float = 0.0  # seconds between retries
    timeout: float | None = None  # seconds
    catch: bool = False  # crashes/timeouts on the last attempt get a fallback attempt
    env: dict[str, str] = field(default_factory=dict)
    cpu: float | None = None  # only for steps with @resources
    gpu: int = 0
    resources: dict[str, Any] = field(default_factory=dict)


def step_policy(func: Any) -> StepPolicy:
    by_name = {d.name: d.validate() for d in getattr(func, "decorators", ())}
    kw: dict[str, Any] = {}
    if "retry" in by_name:
        kw["retries"] = int(by_name["retry"].attributes["times"])
        # Metaflow's local runtime retries at once; wait only when the user asked to.
        if "minutes_between_retries" in by_name["retry"]._given:
            kw["retry_delay"] = 60.0 * float(by_name["retry"].attributes["minutes_between_retries"])
    if "timeout" in by_name:
        kw["timeout"] = by_name["timeout"].total_seconds  # type: ignore[attr-defined]
    if "catch" in by_name:
        kw["catch"] = True
    if "environment" in by_name:
        kw["env"] = dict(by_name["environment"].attributes["vars"])
    if "resources" in by_name:
        a = by_name["resources"].attributes
        kw["cpu"] = float(a["cpu"])
        kw["gpu"] = int(a["gpu"] or 0)
        kw["resources"] = dict(a)
    return StepPolicy(**kw)


def validate_step_decorators(flow_cls: type) -> None:
    """Decorator rules that depend on the graph (e.g. no @catch on a foreach split)."""
    graph = flow_cls._graph
    for name in graph.sorted_nodes:
        func = getattr(flow_cls, name)
        for d in func.decorators:
            d.validate()
        for d in func.decorators:
            d.step_init(flow_cls, graph, name, func.decorators)
        if any(d.name == "catch" for d in func.decorators):
            kind = graph[name].kind.value
            if kind in ("split-foreach", "split-switch"):
                what = "foreach split" if kind == "split-foreach" else "switch"
                raise HeadwaterException(
                    f"@catch is not allowed on step {name!r}, a {what}: a caught failure could not "
                    "decide where the flow goes.",
                    location=graph[name].location,
                    hint="Move the risky code into a step of its own and put @catch there.",
                )
