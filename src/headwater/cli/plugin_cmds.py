"""Plugin commands in both CLIs, and ``headwater plugins`` (interface layer).

A ``headwater.cli`` entry point is a click command. Named ``NAME`` it becomes
``headwater NAME``; named ``flow.NAME`` it becomes ``python flow.py NAME`` (the
flow class is ``ctx.obj["flow_cls"]``). Commands are listed by name and imported
only when run or when ``--help`` lists them.
"""

from __future__ import annotations

from typing import Any

import click

FLOW_PREFIX = "flow."


def plugin_command_names(for_flow: bool) -> list[str]:
    """Names of the plugin commands of the flow CLI (``for_flow``) or of ``headwater``."""
    from ..plugins import PluginKind, plugin_names

    names = plugin_names(PluginKind.CLI)
    if for_flow:
        return [n[len(FLOW_PREFIX):] for n in names if n.startswith(FLOW_PREFIX)]
    return [n for n in names if "." not in n]


def plugin_command(name: str, for_flow: bool) -> click.Command | None:
    """The plugin command ``name`` (imported now), or None if there is none or it is broken."""
    from ..plugins import PluginKind, find_plugin

    found = find_plugin(PluginKind.CLI, FLOW_PREFIX + name if for_flow else name)
    if found is None:
        return None
    if not isinstance(found, click.Command):
        import warnings

        from ..plugins import PluginWarning

        warnings.warn(f"The headwater.cli plugin {name!r} is a {type(found).__name__}, not a click command; "
                      "it is skipped.", PluginWarning, stacklevel=2)
        return None
    return found


class PluginCommandGroup(click.Group):
    """A click group that also offers the installed plugin commands, loaded on first use."""

    for_flow = False

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *plugin_command_names(self.for_flow)})

    def get_command(self, ctx: click.Context, cmd_name: str) -> Any:
        cmd = super().get_command(ctx, cmd_name)
        if cmd is None and cmd_name in plugin_command_names(self.for_flow):
            cmd = plugin_command(cmd_name, self.for_flow)
        return cmd


class FlowCommandGroup(PluginCommandGroup):
    """The flow CLI's group: built-in commands first, then ``flow.*`` plugin commands."""

    for_flow = True


@click.command()
def plugins() -> None:
    """List the installed plugins by kind and check that each one loads."""
    from ..plugins import PluginKind, plugin_status

    by_kind = {kind: plugin_status(kind) for kind in PluginKind}
    rows = [r for found in by_kind.values() for r in found]
    if not rows:
        click.echo("No headwater plugins are installed.")
        return
    w_name = max(len(r[0]) for r in rows)
    w_target = max(len(r[1]) for r in rows)
    for kind, found in by_kind.items():
        if found:
            click.echo(f"{kind.value}:")
        for name, target, error in found:
            state = "ok" if error is None else f"BROKEN ({error})"
            click.echo(f"  {name:<{w_name}}  {target:<{w_target}}  {state}")
