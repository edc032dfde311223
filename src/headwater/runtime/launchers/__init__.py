"""Launchers: the pluggable seam between the scheduler and where tasks run."""

from __future__ import annotations

from .admission import Admission, LocalMachine, Machine, Request
from .base import Finished, Launcher, TaskContext


def make_launcher(name: str, ctx: TaskContext) -> Launcher:
    """The launcher for a run: the one called ``name``, with ``@ray_task`` steps routed to Ray.

    ``name`` is "fork", "subprocess", "ray" or a ``headwater.launchers`` plugin (a
    ``Launcher`` subclass, or any callable, taking the ``TaskContext``).
    """
    launcher = _named_launcher(name, ctx)
    if name == "ray":
        return launcher
    from ...flow.ray_task import ray_step_addresses

    steps = ray_step_addresses(ctx.flow_cls, getattr(ctx.graph, "sorted_nodes", ()))
    if not steps:
        return launcher
    from .ray import RayLauncher
    from .routing import RoutingLauncher

    address = next((a for a in steps.values() if a), None)
    return RoutingLauncher(ctx, launcher, RayLauncher(ctx, address), steps)


def _named_launcher(name: str, ctx: TaskContext) -> Launcher:
    if name == "ray":
        from ...flow.ray_task import ray_step_addresses
        from .ray import RayLauncher

        addresses = ray_step_addresses(ctx.flow_cls, getattr(ctx.graph, "sorted_nodes", ())).values()
        return RayLauncher(ctx, next((a for a in addresses if a), None))
    if name == "fork":
        from .forkpool import ForkPoolLauncher

        return ForkPoolLauncher(ctx)
    if name == "subprocess":
        from .subprocess import SubprocessLauncher

        return SubprocessLauncher(ctx)
    from ...exceptions import HeadwaterException
    from ...plugins import PluginKind, find_plugin, plugin_names

    factory = find_plugin(PluginKind.LAUNCHER, name)
    if callable(factory):
        return factory(ctx)  # type: ignore[no-any-return]
    known = ", ".join(["fork", "subprocess", "ray", *plugin_names(PluginKind.LAUNCHER)])
    raise HeadwaterException(f"Unknown launcher {name!r}.", hint=f"Set HEADWATER_LAUNCHER to one of: {known}.")


__all__ = ["Admission", "Finished", "Launcher", "LocalMachine", "Machine", "Request", "TaskContext", "make_launcher"]
