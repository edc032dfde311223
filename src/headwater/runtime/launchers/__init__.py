"""Launchers: the pluggable seam between the scheduler and where tasks run."""

from __future__ import annotations

from .admission import Admission, LocalMachine, Machine, Request
from .base import Finished, Launcher, TaskContext


def make_launcher(name: str, ctx: TaskContext) -> Launcher:
    """The launcher for a run: the one called ``name``, with steps that ask for another backend
    (``@ray_task``, ``@kubernetes``) routed to it, and local steps with a built environment to a
    subprocess launcher (``routing``).

    ``name`` is "fork", "subprocess", a backend ("ray", "kubernetes") or a ``headwater.launchers``
    plugin (a ``Launcher`` subclass, or any callable, taking the ``TaskContext``).
    """
    from .routing import BACKEND_BY_NAME, decorated_steps, route

    backend = BACKEND_BY_NAME.get(name)
    if backend is None:
        base = _named_launcher(name, ctx)
    else:  # every step runs there; the decorated ones may carry its settings (@ray_task(address=...))
        steps = getattr(ctx.graph, "sorted_nodes", ())
        base = backend.launcher(ctx, decorated_steps(ctx.flow_cls, steps, backend.decorator))
    return route(ctx, base, backend)


def _named_launcher(name: str, ctx: TaskContext) -> Launcher:
    if name == "fork":
        from .forkpool import ForkPoolLauncher

        return ForkPoolLauncher(ctx)
    if name == "subprocess":
        from .subprocess import SubprocessLauncher

        return SubprocessLauncher(ctx)
    from ...exceptions import HeadwaterException
    from ...plugins import PluginKind, find_plugin, plugin_names
    from .routing import BACKENDS

    factory = find_plugin(PluginKind.LAUNCHER, name)
    if callable(factory):
        return factory(ctx)  # type: ignore[no-any-return]
    known = ", ".join(["fork", "subprocess", *(b.name for b in BACKENDS), *plugin_names(PluginKind.LAUNCHER)])
    raise HeadwaterException(f"Unknown launcher {name!r}.", hint=f"Set HEADWATER_LAUNCHER to one of: {known}.")


__all__ = ["Admission", "Finished", "Launcher", "LocalMachine", "Machine", "Request", "TaskContext", "make_launcher"]
