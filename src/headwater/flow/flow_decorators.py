"""Flow-level decorators (``@project``, ``@exit_hook``, ...): the base class and how
they attach to a flow class (authoring layer, internal).

A flow decorator is applied to the ``FlowSpec`` subclass itself. It holds
validated attributes like a step decorator, may add top-level command-line
options (``options``, e.g. ``@project``'s ``--branch``) and is told their values
through ``flow_init`` when the command line starts, before anything runs. Flow
mutators (``FlowMutator``) live in ``headwater.flow.mutators``.
"""

from __future__ import annotations

from typing import Any, Callable

from ..exceptions import HeadwaterException
from .decorators import DecoratorBase, decorator_form

# Where a class keeps its own flow decorators (never inherited from a base flow).
_ATTR = "_hw_flow_decorators"


#: FlowDecorator subclasses defined outside headwater, by name (so plugins and flow files can name them).
CUSTOM_FLOW_DECORATORS: dict[str, type["FlowDecorator"]] = {}


class FlowDecorator(DecoratorBase):
    """Base class of flow decorators, built-in and custom (public as ``headwater.FlowDecorator``).

    ``name`` is the decorator's name, ``defaults`` its attributes with their
    defaults, and ``options`` maps top-level option names (without ``--``) to
    click option keyword arguments (``{"branch": {"default": None, "help": ...}}``).
    Override Metaflow's ``flow_init`` (called with Metaflow's arguments) and
    ``get_top_level_options``; ``make_flow_decorator(cls)`` gives the ``@name`` form.

    Examples
    --------
    >>> class Owner(FlowDecorator):
    ...     name = "owner_doc"
    ...     defaults = {"team": None}
    ...     def flow_init(self, flow, graph, environment, flow_datastore, metadata, logger, echo, options):
    ...         echo("owned by", self.attributes["team"])
    """

    options: dict[str, dict[str, Any]] = {}
    custom_registry = CUSTOM_FLOW_DECORATORS

    def flow_init(self, flow: Any, graph: Any, environment: Any, flow_datastore: Any, metadata: Any,
                  logger: Any, echo: Any, options: dict[str, Any]) -> None:
        """Metaflow's hook: called once when a run (or resume) starts, before anything runs.

        ``flow`` is a bare instance of the flow, ``options`` the values of the top-level
        options; ``environment``, ``flow_datastore`` and ``metadata`` are None
        locally; ``logger`` and ``echo`` print to stderr.
        """

    def get_top_level_options(self) -> list[tuple[str, Any]]:
        """Top-level ``(option, value)`` pairs a task in another process must be given (override)."""
        return []

    def hw_flow_init(self, flow_cls: type, graph: Any, options: dict[str, Any]) -> None:
        """headwater's hook, called by the CLI; by default calls ``flow_init`` with Metaflow's arguments."""
        from .decorators import flow_instance

        self.flow_init(flow_instance(flow_cls), graph, None, None, None, _echo, _echo, options)

    def restore(self, run_record: dict[str, Any]) -> None:
        """In a task started in another process: take the state ``flow_init`` had from the
        run's record instead of the command line (override)."""

    def system_tags(self) -> list[str]:
        """System tags this decorator adds to the run, after ``flow_init`` (override)."""
        return []

    def current_fields(self) -> dict[str, Any]:
        """Fields this decorator adds to ``current`` in every task, after ``flow_init`` (override)."""
        return {}

    def __repr__(self) -> str:
        return f"@{self.name}({', '.join(f'{k}={v!r}' for k, v in self._given.items())})"


def flow_decorators(flow_cls: type) -> list[FlowDecorator]:
    """The flow decorators applied to ``flow_cls`` (outermost last, as applied)."""
    return list(flow_cls.__dict__.get(_ATTR, ()))


def add_flow_decorator(flow_cls: type, deco: FlowDecorator) -> None:
    """Attach ``deco`` to ``flow_cls`` (refusing a duplicate unless allowed)."""
    from .spec import FlowSpec

    if not (isinstance(flow_cls, type) and issubclass(flow_cls, FlowSpec)):
        raise HeadwaterException(
            f"@{deco.name} is a flow decorator: put it on a FlowSpec subclass, not on {flow_cls!r}.",
            hint=f"Write @{deco.name}(...) on the line above 'class MyFlow(FlowSpec):'.",
        )
    existing = flow_cls.__dict__.get(_ATTR)
    if existing is None:
        existing = []
        type.__setattr__(flow_cls, _ATTR, existing)
    if not deco.allow_multiple and any(d.name == deco.name for d in existing):
        raise HeadwaterException(
            f"Flow {flow_cls.__name__!r} has @{deco.name} twice.", hint=f"Keep one @{deco.name}."
        )
    existing.append(deco)


def make_flow_decorator(cls: type[FlowDecorator]) -> Callable[..., Any]:
    """The user-facing decorator for ``cls``: usable bare (``@project``) or called (``@project(name=...)``)."""
    return decorator_form(cls, add_flow_decorator)


def top_level_options(flow_cls: type) -> dict[str, tuple[FlowDecorator, dict[str, Any]]]:
    """Top-level CLI options the flow's decorators add: option name -> (decorator, click kwargs)."""
    out: dict[str, tuple[FlowDecorator, dict[str, Any]]] = {}
    for deco in flow_decorators(flow_cls):
        for opt, kwargs in deco.options.items():
            if opt in out:
                raise HeadwaterException(
                    f"@{deco.name} and @{out[opt][0].name} both add the option --{opt}.",
                    hint="Remove one of the two decorators.",
                )
            out[opt] = (deco, kwargs)
    return out


def flow_option_args(option_values: dict[str, Any]) -> tuple[str, ...]:
    """The top-level CLI arguments that give ``option_values`` again (values at their defaults are
    left out), for the task commands of an orchestrated run: ``("--branch", "b", "--production")``."""
    out: list[str] = []
    for name, value in option_values.items():
        flag = "--" + name.replace("_", "-")
        if value is True:
            out.append(flag)
        elif value is not None and value is not False and value != ():
            out += [flag, str(value)]
    return tuple(out)


def init_flow_decorators(flow_cls: type, graph: Any, option_values: dict[str, Any]) -> None:
    """Validate every flow decorator and call its ``flow_init`` with the top-level option values."""
    for deco in flow_decorators(flow_cls):
        deco.validate()
        deco.hw_flow_init(flow_cls, graph, dict(option_values))


def _echo(*args: Any, **kwargs: Any) -> None:
    import sys

    print(*(a for a in args if isinstance(a, str)), file=sys.stderr)


def flow_system_tags(flow_cls: type) -> list[str]:
    """System tags the flow's decorators add to a run."""
    return [t for d in flow_decorators(flow_cls) for t in d.system_tags()]


def flow_current_fields(flow_cls: type) -> dict[str, Any]:
    """Fields the flow's decorators add to ``current``."""
    out: dict[str, Any] = {}
    for d in flow_decorators(flow_cls):
        out.update(d.current_fields())
    return out
