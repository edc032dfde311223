"""``python flow.py package info|list|save``: show, list and save the flow's code package
(interface layer).

As Metaflow's commands, and like them on stderr after the banner: the package is built but
not stored; ``info`` prints its size, file count and what was packaged; ``list`` prints one
file a line (the paths on this machine, or with ``--archive`` the paths inside the package)
after a header; ``save PATH`` writes the archive (a ``.tgz``) and says so. The group takes
Metaflow's ``--timeout`` (seconds to build the package).
"""

from __future__ import annotations

import json
import os
import sys
import threading
from typing import Any

import click

from .. import __version__
from ..exceptions import HeadwaterException
from .errors import guarded

#: What ``package save`` reports about the archive, as Metaflow's metadata line.
PACKAGE_METADATA = {"version": 0, "archive_format": "tgz"}


class PackageTimeoutError(HeadwaterException):
    headline = "Code package error"


def _say(line: str) -> None:
    click.echo(line, err=True)  # Metaflow prints all of these on stderr


def _size_text(n: int) -> str:
    if n < 1024 * 1024:
        return f"{n / 1024:.2f} KB"
    return f"{n / (1024 * 1024):.2f} MB"


def _build_with_timeout(suffixes: str | None, timeout: float) -> Any:
    from ..package import build_package, parse_suffixes

    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["pkg"] = build_package(os.path.abspath(sys.argv[0]), parse_suffixes(suffixes))
        except BaseException as e:  # handed to the caller's thread
            box["error"] = e

    t = threading.Thread(target=work, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise PackageTimeoutError(f"Building the code package took longer than {timeout:g} seconds.",
                                  hint="Give more time with `package --timeout SECONDS`, or package fewer "
                                       "files (--package-suffixes, or move large trees out of the flow's directory).")
    if "error" in box:
        raise box["error"]
    return box["pkg"]


def add_package_commands(cli: click.Group, flow_cls: type) -> None:
    """Add the ``package`` command group to the per-flow CLI of ``flow_cls``."""
    flow = flow_cls.__name__

    @cli.group(help="Commands related to code packages.")
    @click.option("--timeout", default=60, show_default=True, type=float,
                  help="Timeout for package operations in seconds.")
    @click.pass_context
    def package(ctx: click.Context, timeout: float) -> None:
        ctx.obj["package_timeout"] = timeout

    def built(ctx: click.Context) -> Any:
        from .flow_cli import _banner

        _banner(ctx, flow_cls)
        return guarded(lambda: _build_with_timeout(ctx.obj["top"]["package_suffixes"], ctx.obj["package_timeout"]))

    @package.command(help="Output information about the code package.")
    @click.pass_context
    def info(ctx: click.Context) -> None:
        pkg = built(ctx)
        _say(f"Package size: {_size_text(pkg.size)}")
        _say(f"Number of files: {len(pkg.entries)}")
        _say("")
        _say(f"Headwater version: {__version__}")
        _say("")
        _say(f"User code in flow {flow}:")
        _say(f"  - Packaged from directory {pkg.root}{os.sep}")
        _say(f"  - Filtered by suffixes: {', '.join(pkg.suffixes)}")
        _say(f"  - Flow file in the package: {pkg.script}")

    @package.command(name="list", help="List all files included in the code package.")
    @click.option("--archive/--no-archive", default=False, show_default=True,
                  help="List the paths inside the code package instead of the files on your filesystem.")
    @click.pass_context
    def list_(ctx: click.Context, archive: bool) -> None:
        pkg = built(ctx)
        _say("Files included in the code package (change with --package-suffixes):")
        for e in pkg.entries:
            _say(e.arcname if archive else e.path)

    @package.command(help="Save the current code package to a file.")
    @click.argument("path")
    @click.pass_context
    def save(ctx: click.Context, path: str) -> None:
        pkg = built(ctx)

        def write() -> None:
            try:
                with open(path, "wb") as f:
                    f.write(pkg.blob)
            except OSError as e:
                raise HeadwaterException(f"Cannot save the code package to {path!r}: {e.strerror}.",
                                         hint="Give a path in a directory you can write to.") from None

        guarded(write)
        _say(f"Code package saved in {path} with metadata: {json.dumps(PACKAGE_METADATA)}")
