"""The ``@step`` decorator: marks a FlowSpec method as a step of the graph.

A step function carries ``is_step = True``, ``name``, ``decorators`` (step
decorators stacked above ``@step``, in application order), ``wrappers`` (user
step decorators) and ``config_decorators`` (step mutators), and the optional
``is_start`` / ``is_end`` markers of ``@step(start=True)`` / ``@step(end=True)``.
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar, overload

F = TypeVar("F", bound=Callable[..., Any])


def _mark(func: F, *, start: bool = False, end: bool = False, node_info: dict | None = None) -> F:
    func.is_step = True  # type: ignore[attr-defined]
    func.name = func.__name__  # type: ignore[attr-defined]
    func.decorators = []  # type: ignore[attr-defined]
    func.wrappers = []  # type: ignore[attr-defined]  # UserStepDecorators, innermost first
    func.config_decorators = []  # type: ignore[attr-defined]  # StepMutators
    func.is_start = start  # type: ignore[attr-defined]
    func.is_end = end  # type: ignore[attr-defined]
    func.node_info = dict(node_info or {})  # type: ignore[attr-defined]
    return func


@overload
def step(f: F) -> F: ...
@overload
def step(*, start: bool = False, end: bool = False, node_info: dict | None = None) -> Callable[[F], F]: ...


def step(f: Any = None, *, start: bool = False, end: bool = False, node_info: dict | None = None) -> Any:
    """Mark a method of a ``FlowSpec`` as a step.

    Use bare (``@step``) or called (``@step(start=True)``) to name a custom
    entry or exit step. ``@step`` must be the decorator closest to ``def``.

    Examples
    --------
    >>> class Hello(FlowSpec):
    ...     @step
    ...     def start(self):
    ...         self.x = 1
    ...         self.next(self.end)
    ...     @step
    ...     def end(self):
    ...         pass
    """
    if f is not None:
        if not callable(f):
            raise TypeError("@step takes no positional arguments; use @step or @step(start=True).")
        return _mark(f)

    def wrap(func: F) -> F:
        return _mark(func, start=start, end=end, node_info=node_info)

    return wrap
