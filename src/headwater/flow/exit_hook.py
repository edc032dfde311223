"""``@exit_hook``: functions to call once a run has ended, by outcome (authoring layer).

The decorator only checks and keeps the hooks; ``headwater.runtime.exit_hooks``
calls them when the run is over.
"""

from __future__ import annotations

from typing import Any, Callable

from .decorators import InvalidDecoratorAttribute
from .flow_decorators import FlowDecorator, make_flow_decorator

Hook = Callable[..., Any] | str


class ExitHookDecorator(FlowDecorator):
    """Call functions after the run ends: ``on_success`` ones if it succeeded, else ``on_error`` ones.

    A hook is a function or its name (a function of the flow's module, or a dotted
    ``package.module.function``). A hook that takes ``run`` (or ``**kwargs``) is given
    the finished run as a client ``Run``. Hooks run in the run's process after the
    run is recorded as ended; their output goes to the run's stdout. A failing hook
    is reported on stderr and does not change the run's outcome.

    Parameters
    ----------
    on_success : list of callables or str, default []
        Called when the run succeeded.
    on_error : list of callables or str, default []
        Called when the run failed.
    options : dict, default {}
        Options for schedulers that run hooks elsewhere (kept, unused locally).

    Examples
    --------
    >>> def notify(run=None):  # doctest: +SKIP
    ...     print("finished:", run.pathspec, run.successful)
    >>> @exit_hook(on_success=[notify], on_error=[notify])  # doctest: +SKIP
    ... class TrainFlow(FlowSpec):
    ...     ...
    """

    name = "exit_hook"
    allow_multiple = True
    defaults: dict[str, Any] = {"on_success": [], "on_error": [], "options": {}}

    def init(self) -> None:
        a = self.attributes
        if not a["on_success"] and not a["on_error"]:
            raise InvalidDecoratorAttribute("@exit_hook needs at least one hook.",
                                            hint="Pass on_success=[...] and/or on_error=[...].")
        for key in ("on_success", "on_error"):
            hooks = a[key]
            if callable(hooks) or isinstance(hooks, str):
                hooks = [hooks]
            if not isinstance(hooks, (list, tuple)):
                raise InvalidDecoratorAttribute(f"@exit_hook({key}=...) must be a list of functions.",
                                                hint=f"Write {key}=[my_function].")
            for h in hooks:
                if not (callable(h) or isinstance(h, str)):
                    raise InvalidDecoratorAttribute(
                        f"@exit_hook({key}=...) contains {h!r}, which is neither a function nor a function's name.",
                        hint="List functions, or their names as strings.")
            a[key] = list(hooks)
        if not isinstance(a["options"], dict):
            raise InvalidDecoratorAttribute("@exit_hook(options=...) must be a dict.")

    def hooks(self, ok: bool) -> list[Hook]:
        """The hooks to call for a run that succeeded (``ok``) or failed."""
        return list(self.attributes["on_success" if ok else "on_error"])


exit_hook = make_flow_decorator(ExitHookDecorator)
