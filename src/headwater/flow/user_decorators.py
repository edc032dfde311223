"""User step decorators the Metaflow way (authoring layer; public through ``headwater``):
``UserStepDecorator`` (pre_step / post_step around the step), ``user_step_decorator``
(the generator form), ``USER_SKIP_STEP`` and ``StepMutator`` (edits a step's decorators).

Applying one records it on the step function (``func.wrappers`` or
``func.config_decorators``) and returns the function unchanged. Every concrete
subclass is registered under its qualified name (``module.Class``) so ``--with``
finds it by that name or by any unique dotted suffix of it (``Class``).
"""

from __future__ import annotations

import inspect
import types
from typing import Any, Callable

from ..exceptions import HeadwaterException

#: Yield (or set ``skip_step`` to) this to skip the step and take its usual ``self.next``.
USER_SKIP_STEP: dict[str, Any] = {}

# Qualified name -> class, for --with and decorator_specs.
_REGISTRY: dict[str, type] = {}


class UserDecoratorError(HeadwaterException):
    """A user step decorator or mutator was applied or used wrongly."""

    headline = "Invalid user decorator"


def _is_step(obj: Any) -> bool:
    return callable(obj) and getattr(obj, "is_step", False) is True


class UserStepDecoratorMeta(type):
    """Registers concrete user decorators; ``@Deco`` on a step attaches a fresh instance."""

    def __new__(mcs, name: str, bases: tuple[type, ...], namespace: dict[str, Any], **kw: Any) -> Any:
        cls = super().__new__(mcs, name, bases, namespace, **kw)
        qualified = getattr(cls, "_hw_name", None) or f"{cls.__module__}.{cls.__qualname__}"
        cls.decorator_name = qualified  # type: ignore[attr-defined]
        if "_hw_name" in namespace or not cls.__module__.startswith("headwater."):
            _REGISTRY[qualified] = cls
        return cls

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        if args and getattr(cls, "_hw_kind", "step") == "flow" and isinstance(args[0], type):
            return super().__call__(*args[1:], **kwargs)(args[0])  # bare @Mutator on a flow class
        if args and _is_step(args[0]):  # bare form: @Deco above @step
            deco = super().__call__(*args[1:], **kwargs)
            return deco(args[0])
        return super().__call__(*args, **kwargs)

    def __repr__(cls) -> str:
        return f"<user decorator {cls.decorator_name}>"  # type: ignore[attr-defined]


def user_decorator_class(name: str) -> type | None:
    """The user decorator whose qualified name is ``name`` or ends with ``.name``; None if none.

    Raises ``UserDecoratorError`` when a short name matches several decorators.
    """
    cls = _REGISTRY.get(name)
    if cls is not None:
        return cls
    found = [c for q, c in _REGISTRY.items() if q.endswith("." + name)]
    if len(found) > 1:
        names = ", ".join(sorted(c.decorator_name for c in found))  # type: ignore[attr-defined]
        raise UserDecoratorError(f"--with {name!r} matches several user decorators: {names}.",
                                 hint="Write the decorator's qualified name (module.name).")
    return found[0] if found else None


def short_name(cls: type) -> str:
    """The shortest dotted suffix of ``cls``'s qualified name that names only it."""
    parts = cls.decorator_name.split(".")  # type: ignore[attr-defined]
    for i in range(len(parts) - 1, -1, -1):
        candidate = ".".join(parts[i:])
        if sum(1 for q in _REGISTRY if q == candidate or q.endswith("." + candidate)) <= 1:
            return candidate
    return cls.decorator_name  # type: ignore[attr-defined]


class UserStepDecoratorBase(metaclass=UserStepDecoratorMeta):
    """What user step decorators and step mutators share: arguments, ``init`` and attachment."""

    _step_field = "wrappers"
    _allowed_args = False
    _allowed_kwargs = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._args = list(args)
        self._kwargs = dict(kwargs)
        self.statically_defined = True
        self.inserted_by: Any = None
        self._ran_init = False
        shown = type(self).decorator_name  # type: ignore[attr-defined]
        if self._args and not self._allowed_args:
            raise UserDecoratorError(f"@{shown} takes no positional arguments.",
                                     hint="Pass its arguments by keyword.")
        if self._kwargs and not self._allowed_kwargs:
            raise UserDecoratorError(f"@{shown} takes no arguments.")

    @property
    def name(self) -> str:
        """The decorator's shortest unique name (what ``--with`` and ``decorator_specs`` show)."""
        return short_name(type(self))

    def __call__(self, step_func: Any) -> Any:
        if not _is_step(step_func):
            raise UserDecoratorError(
                f"@{self.name} must be placed above @step (on {getattr(step_func, '__name__', step_func)!r}).",
                hint=f"Write @{self.name} on the line above @step.")
        self._attach(step_func)
        return step_func

    def _attach(self, step_func: Any) -> None:
        getattr(step_func, self._step_field).append(self)

    def external_init(self) -> None:
        """Run ``init`` with the decorator's arguments, once."""
        if self._ran_init:
            return
        if (self._args or self._kwargs) and "init" not in _defining(type(self)):
            raise UserDecoratorError(
                f"@{self.name} is used with arguments but does not implement init().",
                hint="Define init(self, *args, **kwargs) to receive the arguments, or remove them.")
        self.init(*self._args, **self._kwargs)
        self._ran_init = True

    def init(self, *args: Any, **kwargs: Any) -> None:
        """Receive the decorator's arguments (override instead of ``__init__``)."""

    def get_args_kwargs(self) -> tuple[list[Any], dict[str, Any]]:
        """The decorator's arguments, as ``MutableStep.decorator_specs`` reports them."""
        return list(self._args), dict(self._kwargs)

    def __repr__(self) -> str:
        return f"@{self.name}"


def _defining(cls: type) -> set[str]:
    """Attribute names defined by ``cls`` or a user base below the headwater classes."""
    names: set[str] = set()
    for klass in cls.__mro__:
        if klass.__module__.startswith("headwater.") or klass is object:
            break
        names.update(vars(klass))
    return names


class UserStepDecorator(UserStepDecoratorBase):
    """Code around a step: ``pre_step`` before it, ``post_step`` after it (public, as in Metaflow).

    Decorators run outermost first: for ``@a @b @step``, ``a.pre_step``,
    ``b.pre_step``, the step, ``b.post_step``, ``a.post_step``.

    Examples
    --------
    >>> class Announce(UserStepDecorator):
    ...     def pre_step(self, step_name, flow, inputs=None):
    ...         print("starting", step_name)
    """

    _step_field = "wrappers"

    def pre_step(self, step_name: str, flow: Any, inputs: Any = None) -> Callable[..., Any] | None:
        """Before the step; return a callable to run instead of the step (``(flow)``, or ``(flow, inputs)``
        for a join), or None to run it as usual."""
        return None

    def post_step(self, step_name: str, flow: Any, exception: BaseException | None = None) -> Any:
        """After the step; return None (success), an exception (failure) or
        ``(exception, next_args)`` where ``next_args`` is a dict of ``self.next`` arguments,
        ``{}`` / True for the step's usual transition, or None to leave it alone."""
        if exception is not None:
            return exception, None
        return None, None

    @property
    def skip_step(self) -> bool | dict[str, Any]:
        """Set in ``pre_step`` to skip the step: True, or a dict of ``self.next`` arguments."""
        return getattr(self, "_skip_step", False)

    @skip_step.setter
    def skip_step(self, value: bool | dict[str, Any]) -> None:
        self._skip_step = value


class StepMutator(UserStepDecoratorBase):
    """Change a step's decorators before the run (public, as in Metaflow).

    ``pre_mutate(mutable_step)`` runs first, ``mutate(mutable_step)`` after the
    ``--with`` decorators are attached; both run once, in the run process.
    """

    _step_field = "config_decorators"
    _allowed_args = True

    def pre_mutate(self, mutable_step: Any) -> None:
        """Called first (may add or remove any decorator, including mutators)."""

    def mutate(self, mutable_step: Any) -> None:
        """Called after ``--with`` is applied (may add or remove decorators, but not mutators)."""


def user_step_decorator(*args: Any, **kwargs: Any) -> Any:
    """Turn a generator function into a user step decorator (public, as in Metaflow).

    The generator takes ``(step_name, flow, inputs)`` or ``(step_name, flow,
    inputs, attributes)`` and yields once: code before the yield runs before
    the step, code after it runs after the step (an exception from the step is
    raised at the yield and may be caught). Yield None to run the step, a
    callable to run instead of it, or a dict (``USER_SKIP_STEP`` for the usual
    transition) to skip it.

    Examples
    --------
    >>> @user_step_decorator
    ... def timing(step_name, flow, inputs):
    ...     import time
    ...     t = time.time()
    ...     yield
    ...     flow.seconds = time.time() - t
    """
    if not args:
        return lambda f: user_step_decorator(f, **kwargs)
    gen_func = args[0]
    if not isinstance(gen_func, types.FunctionType) or not inspect.isgeneratorfunction(gen_func):
        raise UserDecoratorError("@user_step_decorator can only decorate a generator function (one that yields).",
                                 hint="Put a single yield where the step should run.")
    arity = len(inspect.signature(gen_func).parameters)
    if arity not in (3, 4):
        raise UserDecoratorError(
            f"@user_step_decorator function {gen_func.__name__!r} takes {arity} arguments; "
            "it must take (step_name, flow, inputs) or (step_name, flow, inputs, attributes).")

    class FunctionDecorator(UserStepDecorator):
        _hw_name = f"{gen_func.__module__}.{gen_func.__qualname__}"
        __doc__ = gen_func.__doc__

        def init(self, *a: Any, **attributes: Any) -> None:
            if attributes and arity != 4:
                raise UserDecoratorError(
                    f"@{self.name} was given arguments, but {gen_func.__name__}() takes no attributes parameter.",
                    hint="Add a fourth parameter, attributes, to receive them.")
            self._attributes = attributes

        def pre_step(self, step_name: str, flow: Any, inputs: Any = None) -> Any:
            self.skip_step = False
            call = (step_name, flow, inputs) + ((self._attributes,) if arity == 4 else ())
            self._gen = gen_func(*call)
            try:
                value = next(self._gen)
            except StopIteration:  # never yielded: the step does not run
                self._gen = None
                self.skip_step = True
                return None
            if isinstance(value, dict):
                self.skip_step = value if value else True
                return None
            return value

        def post_step(self, step_name: str, flow: Any, exception: BaseException | None = None) -> Any:
            gen, self._gen = self._gen, None
            if gen is None:
                return exception
            try:
                if exception is not None:
                    gen.throw(exception)
                else:
                    next(gen)
            except StopIteration as stop:
                return stop.value
            except Exception as e:
                return e
            return None, None, UserDecoratorError(f"@{self.name} ({gen_func.__name__}) yields more than once.",
                                                  hint="A user step decorator yields exactly once.")

    FunctionDecorator.__name__ = FunctionDecorator.__qualname__ = gen_func.__name__
    FunctionDecorator.__module__ = gen_func.__module__
    return FunctionDecorator
