"""CLI commands: ``headwater hello`` and ``python flow.py describe``."""

from __future__ import annotations

import click


@click.command(help="Say hello (a plugin command of the headwater CLI).")
@click.option("--name", default="world")
def hello(name: str) -> None:
    click.echo(f"hello, {name}, from hw_example_plugin")


@click.command(help="List the flow's steps (a plugin command of the flow CLI).")
@click.pass_context
def describe(ctx: click.Context) -> None:
    flow_cls = ctx.obj["flow_cls"]
    click.echo(f"{flow_cls.__name__}: " + ", ".join(flow_cls._graph.sorted_nodes))
