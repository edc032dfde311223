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
from typing import Any, Callable, ClassVar

from ..exceptions import HeadwaterException
from .graph import NodeKind


class InvalidDecoratorAttribute(HeadwaterException):
    """A decorator was given an attribute it does not have, or a bad value."""

    headline = "Invalid decorator attribute"


class UnknownDecoratorError(HeadwaterException):
    """``--with`` named a decorator that does not exist (exit 1, as Metaflow's)."""

    headline = "Unknown step decorator"


#: StepDecorator subclasses defined outside headwater (in a flow file or a module it imports), by name.
CUSTOM_DECORATORS: dict[str, type["StepDecorator"]] = {}


class DecoratorBase:
    """What step and flow decorators share: a ``name``, ``defaults``, and attributes
    validated on first use (``validate``). A subclass defined outside headwater is
    registered by ``name`` in its kind's ``custom_registry``."""

    name = ""
    defaults: dict[str, Any] = {}
    allow_multiple = False
    custom_registry: ClassVar[dict[str, type] | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = cls.__dict__.get("name")
        registry = cls.custom_registry
        if registry is not None and isinstance(name, str) and name and not cls.__module__.startswith("headwater."):
            registry[name] = cls

    def __init__(self, attributes: dict[str, Any] | None = None, statically_defined: bool = True,
                 inserted_by: Any = None) -> None:
        # Validation waits for validate(): a mistake in @retry(...) found while the
        # flow module is still being imported could not be reported without a traceback.
        self._given = dict(attributes or {})
        self.attributes = dict(self.defaults)
        self.statically_defined = statically_defined
        self.inserted_by = inserted_by
        self._valid = False

    def validate(self) -> Any:
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

    def external_init(self) -> None:
        """Metaflow's name for validating the attributes and running ``init`` once."""
        self.validate()

    def init(self) -> None:
        """Validate attributes (override)."""

    def get_args_kwargs(self) -> tuple[list[Any], dict[str, Any]]:
        """The decorator's arguments, as ``decorator_specs`` of a mutable step or flow reports them."""
        return [], dict(self.attributes if self._valid else {**self.defaults, **self._given})


class StepDecorator(DecoratorBase):
    """Base class of step decorators, built-in and custom (public as ``headwater.StepDecorator``).

    Subclass it the way Metaflow users do: set ``name`` and ``defaults``,
    validate attributes in ``init`` and override any of Metaflow's hooks below,
    which headwater calls with Metaflow's arguments. Defining the subclass
    registers it by ``name``, so ``--with name`` attaches it once its module is
    imported; ``headwater.flow.decorators.make_step_decorator(cls)`` gives the
    ``@name`` form. See docs/extending.md for when each hook runs.
    """

    custom_registry = CUSTOM_DECORATORS

    # ---- Metaflow's hooks, called with Metaflow's arguments ----------------------------
    # Run process, before anything runs (after --with and mutators): ``flow`` is a
    # bare instance of the flow, ``environment`` and ``flow_datastore`` are None, ``logger`` echoes.
    def step_init(self, flow: Any, graph: Any, step_name: str, decorators: list["StepDecorator"],
                  environment: Any, flow_datastore: Any, logger: Any) -> None:
        """Check rules that involve the step's other decorators (override); runs before the run starts."""

    def step_task_retry_count(self) -> tuple[int | None, int | None]:
        """``(user_code_retries, error_retries)`` this decorator asks for; the largest request wins."""
        return 0, 0

    # Run process, once per run: ``package`` is None (no code package locally).
    def runtime_init(self, flow: Any, graph: Any, package: Any, run_id: str) -> None:
        """Before the first task of the run is started."""

    # Run process, per task of this step: ``task_datastore`` is the run's Datastore.
    def runtime_task_created(self, task_datastore: Any, task_id: str, split_index: int | None,
                             input_paths: list[str], is_cloned: bool, ubf_context: Any) -> None:
        """When the scheduler creates a task of this step (also for tasks cloned by resume)."""

    def runtime_finished(self, exception: BaseException | None) -> None:
        """When the run ends; ``exception`` is what stopped it, or None."""

    # Task process: ``task_datastore`` is the Datastore, ``metadata`` None,
    # ``ubf_context`` None, ``inputs`` the join's inputs (else None).
    def task_pre_step(self, step_name: str, task_datastore: Any, metadata: Any, run_id: str, task_id: str,
                      flow: Any, graph: Any, retry_count: int, max_user_code_retries: int,
                      ubf_context: Any, inputs: Any) -> None:
        """Before the step function runs (``current`` is set)."""

    def task_decorate(self, step_func: Any, flow: Any, graph: Any, retry_count: int,
                      max_user_code_retries: int, ubf_context: Any) -> Any:
        """Return the callable to run instead of ``step_func`` (or ``step_func`` itself)."""
        return step_func

    def task_post_step(self, step_name: str, flow: Any, graph: Any, retry_count: int,
                       max_user_code_retries: int) -> None:
        """After the step function succeeded, before its artifacts are saved (may set artifacts)."""

    def task_exception(self, exception: BaseException, step_name: str, flow: Any, graph: Any,
                       retry_count: int, max_user_code_retries: int) -> bool | None:
        """When the step raised; return True to treat the exception as handled (the step then succeeds)."""
        return None

    def task_finished(self, step_name: str, flow: Any, graph: Any, is_task_ok: bool, retry_count: int,
                      max_user_code_retries: int) -> None:
        """After the attempt record is committed, success or failure."""

    # ---- headwater's own task hooks (internal) ---------------------------------------
    # Called by the executor with a ``TaskHookContext`` (headwater.runtime.executor):
    # ``flow``, ``spec`` (the TaskSpec), ``graph``, ``datastore``, ``record`` (the
    # committed attempt record, in hw_task_finished) and ``ok``. A hook that raises
    # fails the task (hw_task_pre_step) or is reported and ignored (hw_task_finished).
    def hw_task_pre_step(self, ctx: Any) -> None:
        """Before the step function runs, after ``task_pre_step``."""

    def hw_task_finished(self, ctx: Any) -> None:
        """After the attempt record is committed, before ``task_finished``."""

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
LAZY_DECORATORS: dict[str, str] = {
    "card": "headwater.cards.decorator:CardDecorator",
    "conda": "headwater.flow.environment_decorators:CondaDecorator",
    "kubernetes": "headwater.flow.kubernetes:KubernetesDecorator",
    "parallel": "headwater.flow.parallel:ParallelDecorator",
    "pypi": "headwater.flow.environment_decorators:PypiDecorator",
    "ray_task": "headwater.flow.ray_task:RayTaskDecorator",
    "secrets": "headwater.secret_providers.decorator:SecretsDecorator",
}


def decorator_class(name: str) -> type[StepDecorator] | None:
    """The step decorator class called ``name``, or None.

    Looked up among the built-in decorators (importing a lazy one), then
    StepDecorator subclasses defined in the flow's modules, then the
    ``headwater.step_decorators`` plugins (imported on first use).
    """
    cls = DECORATORS.get(name) or CUSTOM_DECORATORS.get(name)
    if cls is None and name in LAZY_DECORATORS:
        import importlib

        mod, _, attr = LAZY_DECORATORS[name].partition(":")
        cls = DECORATORS[name] = getattr(importlib.import_module(mod), attr)
    if cls is None:
        from ..plugins import PluginKind, find_plugin

        found = find_plugin(PluginKind.STEP_DECORATOR, name)
        if isinstance(found, type) and issubclass(found, StepDecorator):
            cls = found
    return cls


def _user_decorator(name: str) -> Any:
    """A user step decorator or mutator class by name (flow modules first, then plugins), or None."""
    from .user_decorators import UserStepDecoratorBase, user_decorator_class

    cls = user_decorator_class(name)
    if cls is not None and not issubclass(cls, UserStepDecoratorBase):
        cls = None  # a flow mutator
    if cls is None:
        from ..plugins import PluginKind, find_plugin

        found = find_plugin(PluginKind.STEP_DECORATOR, name)
        if isinstance(found, type) and issubclass(found, UserStepDecoratorBase):
            cls = found
    return cls


def make_step_decorator(cls: type[StepDecorator]) -> Callable[..., Any]:
    """The ``@name`` / ``@name(key=value)`` form of a StepDecorator subclass.

    Examples
    --------
    >>> class Tag(StepDecorator):
    ...     name = "tag_doc"
    ...     defaults = {"label": None}
    >>> tag_doc = make_step_decorator(Tag)
    """
    return _make(cls)


def decorator_form(cls: type[DecoratorBase], attach_to: Callable[[Any, Any], None]) -> Callable[..., Any]:
    """The user-facing ``@name`` / ``@name(key=value, ...)`` form of a decorator class;
    ``attach_to(target, decorator)`` attaches an instance to what it decorates."""

    def decorator(f: Any = None, **attributes: Any) -> Any:
        def attach(target: Any) -> Any:
            attach_to(target, cls(attributes))
            return target

        if f is not None:
            if attributes or not callable(f):
                raise TypeError(f"Use @{cls.name} or @{cls.name}(key=value, ...).")
            return attach(f)
        return attach

    decorator.__name__ = cls.name
    decorator.__doc__ = cls.__doc__
    decorator.deco_cls = cls  # type: ignore[attr-defined]
    return decorator


def _attach_to_step(func: Any, deco: StepDecorator) -> None:
    if not getattr(func, "is_step", False):
        raise HeadwaterException(
            f"@{deco.name} must be placed above @step (on {getattr(func, '__name__', func)!r}).",
            hint=f"Write @{deco.name} on the line above @step.",
        )
    add_decorator(func, deco)


def _make(cls: type[StepDecorator]) -> Callable[..., Any]:
    return decorator_form(cls, _attach_to_step)


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


def parse_decospec(spec: str) -> Any:
    """``name[:k=v,k2=json]`` → a decorator (values JSON, else int, else float, else str).

    ``name`` is a step decorator (built-in, defined in the flow's modules or a
    plugin) or a user step decorator / mutator, by qualified name or unique suffix.
    """
    name, _, rest = spec.partition(":")
    name = name.strip()
    attrs: dict[str, Any] = {}
    if rest.strip():
        for item in _SPLIT.split(rest):
            key, eq, raw = item.partition("=")
            if not eq:
                raise InvalidDecoratorAttribute(f"--with {spec!r}: expected key=value, got {item!r}.")
            attrs[key.strip()] = _value(raw.strip())
    cls = decorator_class(name)
    if cls is not None:
        return cls(attrs, statically_defined=False).validate()
    user_cls = _user_decorator(name)
    if user_cls is not None:
        args = [attrs.pop(k) for k in sorted((k for k in attrs if k.isdigit()), key=int)]
        deco = user_cls(*args, **attrs)
        deco.statically_defined = False
        return deco
    from ..plugins import PluginKind, plugin_names

    known = sorted(set(DECORATORS) | set(LAZY_DECORATORS) | set(CUSTOM_DECORATORS)
                   | set(plugin_names(PluginKind.STEP_DECORATOR)))
    raise UnknownDecoratorError(
        f"--with {spec!r}: there is no step decorator called {name!r}.",
        hint=f"The following decorators are supported: {', '.join(known)}; a user step decorator is found by name once the flow "
             "imports its module.",
    )


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
    from .user_decorators import UserStepDecoratorBase

    for spec in specs:
        for name in flow_cls._graph.sorted_nodes:
            func = getattr(flow_cls, name)
            deco = parse_decospec(spec)
            if isinstance(deco, UserStepDecoratorBase):
                field = getattr(func, deco._step_field)
                if not any(type(d) is type(deco) for d in field):
                    deco(func)
                continue
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
    decos = [d.validate() for d in getattr(func, "decorators", ())]
    by_name = {d.name: d for d in decos}
    kw: dict[str, Any] = {}
    if "retry" in by_name:
        kw["retries"] = int(by_name["retry"].attributes["times"])
        # Metaflow's local runtime retries at once; wait only when the user asked to.
        if "minutes_between_retries" in by_name["retry"]._given:
            kw["retry_delay"] = 60.0 * float(by_name["retry"].attributes["minutes_between_retries"])
    asked = [d.step_task_retry_count()[0] for d in decos
             if type(d).step_task_retry_count is not StepDecorator.step_task_retry_count]
    if asked:  # Metaflow's rule: the largest request wins
        kw["retries"] = max([kw.get("retries", 0)] + [int(n or 0) for n in asked])
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


def _echo(*args: Any, **kwargs: Any) -> None:
    import sys

    print(*args, file=sys.stderr)


def flow_instance(flow_cls: type) -> Any:
    """A bare instance of the flow, what Metaflow's run-process hooks receive as ``flow``."""
    flow = flow_cls.__new__(flow_cls)
    flow._hw_reset()
    return flow


# Steps whose failure @catch cannot absorb (what the flow does next depends on the step), as named to users.
_NO_CATCH = {NodeKind.FOREACH: "foreach split", NodeKind.PARALLEL: "num_parallel split", NodeKind.SWITCH: "switch"}


def validate_step_decorators(flow_cls: type) -> None:
    """Decorator rules that depend on the graph (e.g. no @catch on a foreach split); calls ``step_init``."""
    graph = flow_cls._graph
    flow = None
    for name in graph.sorted_nodes:
        func = getattr(flow_cls, name)
        for d in func.decorators:
            d.validate()
        for w in getattr(func, "wrappers", ()):
            w.external_init()
        for d in func.decorators:
            if type(d).step_init is not StepDecorator.step_init:
                flow = flow or flow_instance(flow_cls)
                d.step_init(flow, graph, name, func.decorators, None, None, _echo)
        if any(d.name == "catch" for d in func.decorators):
            kind = graph[name].kind
            if kind in _NO_CATCH:
                what = _NO_CATCH[kind]
                raise HeadwaterException(
                    f"@catch is not allowed on step {name!r}, a {what}: a caught failure could not "
                    "decide where the flow goes.",
                    location=graph[name].location,
                    hint="Move the risky code into a step of its own and put @catch there.",
                )
