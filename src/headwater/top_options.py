"""The top-level options of ``python flow.py [OPTIONS] COMMAND``, in one table (shared by interfaces).

Metaflow's scripts and docs pass options such as ``--metadata=local`` or
``--datastore=local``; each row here says the flag, its Runner keyword, the
values headwater accepts and the values Metaflow knows that headwater does not
support yet. Two interfaces read it: the flow CLI builds its click options from
it (``headwater.cli.top_options.click_params``) and the Runner renders
``Runner(**top_level_kwargs)`` from it, so neither repeats it and the Runner
never imports the CLI layer for it.

Adding an option is adding a row (``--config NAME PATH`` is a ``PAIRS`` row);
its value reaches the CLI as ``ctx.obj["top"][row.name]``. Importing this module
does not import click.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .environments.kinds import ExecutionEnvironment
from .exceptions import UnsupportedOptionError
from .plugins import PluginKind, plugin_names


class OptionKind(enum.Enum):
    """How an option is written on the command line."""

    SWITCH = "switch"  # --quiet / --not-quiet
    VALUE = "value"  # --datastore-root PATH
    CHOICE = "choice"  # --datastore local: one of a closed set
    MULTIPLE = "multiple"  # --with retry --with card (repeatable)
    PAIRS = "pairs"  # --config NAME PATH (two values, repeatable)


@dataclass(frozen=True)
class TopOption:
    """One top-level option.

    ``name`` is both the click parameter name and the Runner keyword;
    ``supported`` (for a CHOICE) the values headwater accepts, the first being
    the default; ``not_yet`` the values Metaflow knows that headwater refuses
    with a clear message; ``envvar`` an environment variable giving the default;
    ``click_extra`` more keyword arguments for ``click.Option`` (``type``,
    ``is_eager``, ``hidden``...).
    """

    name: str
    flag: str
    kind: OptionKind
    help: str
    off_flag: str | None = None
    default: Any = None
    supported: tuple[str, ...] = ()
    not_yet: tuple[str, ...] = ()
    envvar: str | None = None
    metavar: str | None = None
    click_extra: Mapping[str, Any] = field(default_factory=dict)
    plugin_group: PluginKind | None = None  # a CHOICE also accepts the names of these plugins


TOP_OPTIONS: tuple[TopOption, ...] = (
    TopOption("quiet", "--quiet", OptionKind.SWITCH, "Hide the banner and the checks (the run's console lines stay).",
              off_flag="--not-quiet", default=False),
    TopOption("metadata", "--metadata", OptionKind.CHOICE, "Metadata provider.",
              supported=("local",), not_yet=("service", "spin"), envvar="HEADWATER_DEFAULT_METADATA",
              plugin_group=PluginKind.METADATA_PROVIDER),
    TopOption("environment", "--environment", OptionKind.CHOICE, "Execution environment.",
              supported=tuple(e.value for e in ExecutionEnvironment), envvar="HEADWATER_DEFAULT_ENVIRONMENT"),
    TopOption("datastore", "--datastore", OptionKind.CHOICE,
              "Datastore type (default: the root's; s3 uses HEADWATER_DATASTORE_ROOT=s3://bucket/prefix).",
              supported=("local", "s3"), not_yet=("azure", "gs", "spin"), envvar="HEADWATER_DATASTORE",
              click_extra={"default": None, "show_default": False}),
    TopOption("datastore_root", "--datastore-root", OptionKind.VALUE,
              "Store root: a directory or s3://bucket/prefix (default: HEADWATER_DATASTORE_ROOT, else the "
              "nearest .headwater/ upward, else ./.headwater).", metavar="PATH|URL"),
    TopOption("package_suffixes", "--package-suffixes", OptionKind.VALUE,
              "Suffixes of the files packaged from the flow's directory (comma separated; default .py).",
              metavar="SUFFIXES"),
    TopOption("decospecs", "--with", OptionKind.MULTIPLE,
              "Add a step decorator to every step, e.g. --with retry:times=2 (repeatable).",
              metavar="DECORATOR[:k=v,...]"),
    TopOption("pylint", "--pylint", OptionKind.SWITCH,
              "Accepted for Metaflow compatibility; headwater's own graph lint always runs, pylint does not.",
              off_flag="--no-pylint", default=True),
    TopOption("event_logger", "--event-logger", OptionKind.CHOICE, "Event logger (accepted for Metaflow compatibility; headwater logs no events).",
              supported=("nullSidecarLogger", "debugLogger"), envvar="HEADWATER_DEFAULT_EVENT_LOGGER"),
    TopOption("config", "--config", OptionKind.PAIRS,
              "Read config NAME from the file PATH (repeatable; env HEADWATER_FLOW_CONFIG).", metavar="NAME PATH"),
    TopOption("config_value", "--config-value", OptionKind.PAIRS,
              "Set config NAME to VALUE (repeatable; env HEADWATER_FLOW_CONFIG_VALUE).", metavar="NAME VALUE"),
    TopOption("monitor", "--monitor", OptionKind.CHOICE, "Monitoring backend (accepted for Metaflow compatibility; ignored).",
              supported=("nullSidecarMonitor", "debugMonitor"), envvar="HEADWATER_DEFAULT_MONITOR"),
)

#: The rows by name (the click parameter name and Runner keyword).
BY_NAME: dict[str, TopOption] = {o.name: o for o in TOP_OPTIONS}


def check_choice(opt: TopOption, value: str) -> str:
    """``value`` if headwater supports it for ``opt``; else ``UnsupportedOptionError``.

    Raises
    ------
    UnsupportedOptionError
        Naming the option, the value and what is supported (exit status 2).
    """
    if value in opt.supported:
        return value
    plugins: list[str] = []
    if opt.plugin_group is not None:
        plugins = plugin_names(opt.plugin_group)
        if value in plugins:
            return value
    ok = ", ".join((*opt.supported, *plugins))
    if value in opt.not_yet:
        raise UnsupportedOptionError(
            f"{opt.flag}={value} is not supported yet by headwater (supported: {ok}).",
            hint=f"Leave out {opt.flag} or pass {opt.flag}={opt.supported[0]}.",
        )
    known = ", ".join((*opt.supported, *opt.not_yet))
    raise UnsupportedOptionError(
        f"{opt.flag}={value} is not a valid value (Metaflow knows: {known}; headwater supports: {ok}).",
        hint=f"Leave out {opt.flag} or pass {opt.flag}={opt.supported[0]}.",
    )


__all__ = ["BY_NAME", "TOP_OPTIONS", "OptionKind", "TopOption", "check_choice"]
