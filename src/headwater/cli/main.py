"""The top-level ``headwater`` command (interface layer): store-wide tools.

This module holds only the group and a name → ``"module:attr"`` table; each
command's module is imported when that command runs (or its help is shown).
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from .. import __version__
from .plugin_cmds import PluginCommandGroup

COMMANDS = {
    "delete": "headwater.cli.gc_cmds:delete",
    "gc": "headwater.cli.gc_cmds:gc",
    "plugins": "headwater.cli.plugin_cmds:plugins",
    "reindex": "headwater.cli.store_cmds:reindex",
    "runs": "headwater.cli.store_cmds:runs",
    "show": "headwater.cli.store_cmds:show",
    "verify": "headwater.cli.verify_cmd:verify",
}


class LazyGroup(PluginCommandGroup):
    """The ``headwater`` group: commands in ``COMMANDS`` load on first use, then plugin commands."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> Any:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return super().get_command(ctx, cmd_name)
        module, _, attr = target.partition(":")
        return getattr(importlib.import_module(module), attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="headwater")
def cli() -> None:
    """headwater: fast ML and data pipelines with Metaflow's API."""


@cli.command()
def version() -> None:
    """Print headwater's version."""
    click.echo(__version__)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
