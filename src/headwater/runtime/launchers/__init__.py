"""Launchers: the pluggable seam between the scheduler and where tasks run."""

from __future__ import annotations

from .base import Finished, Launcher, TaskContext


def make_launcher(name: str, ctx: TaskContext) -> Launcher:
    """The launcher called ``name`` ("fork" or "subprocess")."""
    if name == "fork":
        from .forkpool import ForkPoolLauncher

        return ForkPoolLauncher(ctx)
    if name == "subprocess":
        from .subprocess import SubprocessLauncher

        return SubprocessLauncher(ctx)
    from ...exceptions import HeadwaterException

    raise HeadwaterException(f"Unknown launcher {name!r}.", hint="Set HEADWATER_LAUNCHER to 'fork' or 'subprocess'.")


__all__ = ["Finished", "Launcher", "TaskContext", "make_launcher"]
