"""Launchers: the pluggable seam between the scheduler and where tasks run."""

from __future__ import annotations

from .admission import Admission, LocalMachine, Machine, Request
from .base import Finished, Launcher, TaskContext


def make_launcher(name: str, ctx: TaskContext) -> Launcher:
    """The launcher called ``name``: "fork", "subprocess" or a ``headwater.launchers`` plugin.

    A plugin is a ``Launcher`` subclass (or any callable) taking the ``TaskContext``.
    """
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
    known = ", ".join(["fork", "subprocess", *plugin_names(PluginKind.LAUNCHER)])
    raise HeadwaterException(f"Unknown launcher {name!r}.", hint=f"Set HEADWATER_LAUNCHER to one of: {known}.")


__all__ = ["Admission", "Finished", "Launcher", "LocalMachine", "Machine", "Request", "TaskContext", "make_launcher"]
