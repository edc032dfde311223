"""The top-level ``headwater`` command (store-wide tools; more arrive with later issues)."""

from __future__ import annotations

import click

from .. import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="headwater")
def cli() -> None:
    """headwater: fast ML and data pipelines with Metaflow's API."""


@cli.command()
def version() -> None:
    """Print headwater's version."""
    click.echo(__version__)


def main() -> None:
    cli()
