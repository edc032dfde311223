"""Internal (runner layer): turn Runner keyword arguments into the flow CLI's argv,
and check them in-process, with the CLI's own messages, before a run starts.

The tables below mirror the options of ``headwater.cli.flow_cli``; a test keeps
them in step with the click commands. Values are checked by parsing the argv
with the flow's real click command, so a bad value gets exactly the message
``python flow.py run`` would print.
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..top_options import TOP_OPTIONS, OptionKind, TopOption, check_choice
from ..exceptions import RunnerTypeError, RunnerValueError, UnsupportedOptionError


@dataclass(frozen=True)
class Opt:
    """One CLI option as a Python keyword: ``flag`` (and ``off_flag`` for a boolean switch).

    ``kind`` is "value", "multiple", "switch", "argument" or "pairs" (``--config NAME PATH``);
    ``choices`` (top level) are checked in-process by ``check_choice``.
    """

    flag: str
    kind: str
    off_flag: str | None = None
    top: TopOption | None = None


#: Runner(**top_level) -> options before the command (``python flow.py [these] run``),
#: from the shared table (``headwater.top_options``).
TOP_LEVEL: dict[str, Opt] = {
    o.name: Opt(o.flag, "value" if o.kind is OptionKind.CHOICE else o.kind.value, o.off_flag, o)
    for o in TOP_OPTIONS
}

_COMMON: dict[str, Opt] = {
    "tags": Opt("--tag", "multiple"),
    "max_workers": Opt("--max-workers", "value"),
    "max_num_splits": Opt("--max-num-splits", "value"),
    "max_log_size": Opt("--max-log-size", "value"),
    "decospecs": Opt("--with", "multiple"),
    "run_id_file": Opt("--run-id-file", "value"),
}

#: run(**kwargs) / resume(**kwargs) -> the command's own options (flow parameters come on top for run).
COMMANDS: dict[str, dict[str, Opt]] = {
    "run": {**_COMMON, "user_namespace": Opt("--namespace", "value")},
    "resume": {"step_to_rerun": Opt("STEP_TO_RERUN", "argument"),
               "origin_run_id": Opt("--origin-run-id", "value"), **_COMMON},
}

#: Options the Runner itself passes; a caller cannot set them.
RESERVED = {"runner_attribute_file": "--runner-attribute-file"}


def _many(where: str, value: Any) -> list[Any]:
    """The items of a repeatable option's value: a list or tuple, as Metaflow's Runner requires
    (a lone string would otherwise be a silent one-item list, or split into characters)."""
    if not isinstance(value, (list, tuple)):
        raise RunnerTypeError(f"{where} takes a list of strings, got {value!r}.",
                              hint=f"Pass a list, e.g. {where.replace('...', repr([value]))}.")
    return list(value)


def _unknown(name: str, what: str, groups: dict[str, list[str]]) -> Exception:
    valid = [n for names in groups.values() for n in names]
    close = difflib.get_close_matches(name, valid, n=1)
    hint = f"Did you mean {close[0]!r}? " if close else ""
    listed = "; ".join(f"{label}: {', '.join(names)}" for label, names in groups.items() if names)
    if name in RESERVED:
        hint = f"The Runner passes {RESERVED[name]} itself; use run_id_file= to get the run id in a file. "
    return RunnerValueError(f"Unknown argument {name!r} for {what}.", hint=hint + f"Valid arguments are {listed}.")


def _check_top_value(name: str, opt: Opt, value: Any) -> None:
    """A top-level keyword's value has the type its option takes, and a supported value."""
    top = opt.top
    if top is None or value is None:
        return
    if top.kind is OptionKind.SWITCH and not isinstance(value, bool):
        raise RunnerTypeError(f"Runner({name}=...) takes True or False, got {value!r}.",
                              hint=f"Pass {name}=True for {opt.flag} or {name}=False for {opt.off_flag}.")
    if top.kind in (OptionKind.VALUE, OptionKind.CHOICE) and not isinstance(value, (str, os.PathLike)):
        raise RunnerTypeError(f"Runner({name}=...) takes a string, got {value!r}.")
    if top.kind is OptionKind.CHOICE:
        try:
            check_choice(top, os.fspath(value))
        except UnsupportedOptionError as e:
            raise RunnerValueError(f"Runner({name}={value!r}): {e.message}", hint=e.hint) from None


def flow_decorator_options(flow_cls: type) -> dict[str, Opt]:
    """Runner keywords for the top-level options the flow's decorators add (@project's
    ``branch`` and ``production``): the option name with ``-`` as ``_``."""
    from ..flow.flow_decorators import top_level_options

    return {name.replace("-", "_"): Opt(f"--{name}", "switch" if kwargs.get("is_flag") else "value")
            for name, (_, kwargs) in top_level_options(flow_cls).items()}


def render_top_level(kwargs: Mapping[str, Any], flow_options: Mapping[str, Opt] | None = None) -> list[str]:
    """argv for the top-level options; ``flow_options`` are those the flow's decorators add
    (``flow_decorator_options``).

    Raises
    ------
    RunnerValueError
        An unknown keyword (naming the valid ones) or an unsupported value.
    RunnerTypeError
        A value of the wrong type (``quiet="yes"``).
    """
    argv: list[str] = []
    for name, value in kwargs.items():
        opt = TOP_LEVEL.get(name) or (flow_options or {}).get(name)
        if opt is None:
            raise _unknown(name, "Runner()", {"top-level options": sorted(TOP_LEVEL),
                                              "flow decorator options": sorted(flow_options or {})})
        if opt.top is None and opt.kind == "switch" and value is not None and not isinstance(value, bool):
            raise RunnerTypeError(f"Runner({name}=...) takes True or False, got {value!r}.",
                                  hint=f"Pass {name}=True for {opt.flag}.")
        _check_top_value(name, opt, value)
        argv += _render(opt, value, where=f"Runner({name}=...)")
    return argv


def _render(opt: Opt, value: Any, *, where: str) -> list[str]:
    if value is None:
        return []
    if opt.kind == "switch":
        off = [opt.off_flag] if opt.off_flag else []
        return [opt.flag] if value else off
    if opt.kind == "pairs":  # [(name, value), ...] or {name: value}; a non-string value as JSON
        items = value.items() if isinstance(value, Mapping) else value
        out = []
        for name, v in items:
            text = os.fspath(v) if isinstance(v, os.PathLike) else v if isinstance(v, str) else json.dumps(v)
            out += [opt.flag, str(name), text]
        return out
    if opt.kind == "multiple":
        out = []
        for v in _many(where, value):
            out += [opt.flag, os.fspath(v) if isinstance(v, os.PathLike) else str(v)]
        return out
    text = os.fspath(value) if isinstance(value, os.PathLike) else str(value)
    return [text] if opt.kind == "argument" else [opt.flag, text]


def parameter_keyword(p: Any) -> str:
    """The Python keyword of a flow Parameter: its CLI name with ``-`` as ``_`` (as in Metaflow)."""
    return str(p.name).replace("-", "_")


def _render_parameter(p: Any, value: Any) -> list[str]:
    from ..flow.parameters import JSONTypeClass

    flag = f"--{p.name}"
    if value is None:
        return []
    if p.IS_INCLUDE_FILE:
        return [flag, os.fspath(value)]
    if isinstance(p.type, JSONTypeClass):
        # A string is JSON text, as on the command line; anything else is encoded.
        return [flag, value if isinstance(value, str) else json.dumps(value)]
    if p.type is bool and isinstance(value, bool):
        return [flag, "true" if value else "false"]
    if p.separator is not None and isinstance(value, (list, tuple)):
        return [flag, p.separator.join(str(v) for v in value)]
    if isinstance(value, (list, tuple, set, dict)):
        raise RunnerTypeError(f"Invalid value for '--{p.name}': {value!r} is not a valid {p.type_name}.",
                              hint=f"Pass one {p.type_name} as {parameter_keyword(p)}=.")
    return [flag, str(value)]


def render_command(command: str, kwargs: Mapping[str, Any], flow_cls: type,
                   env: Mapping[str, str]) -> list[str]:
    """argv after the command name for ``run``/``resume`` keyword arguments.

    Raises RunnerValueError (a ``ValueError`` and a ``ParameterError``) for an
    unknown keyword (listing the valid ones) or a required parameter that has no
    value, before anything is spawned.
    """
    from ..flow.parameters import flow_parameters, missing_required

    options = COMMANDS[command]
    params = {parameter_keyword(p): p for p in flow_parameters(flow_cls)} if command == "run" else {}
    argv: list[str] = []
    positional: list[str] = []
    for name, value in kwargs.items():
        opt = options.get(name)
        if opt is not None:
            rendered = _render(opt, value, where=f"{command}({name}=...)")
            (positional if opt.kind == "argument" else argv).extend(rendered)
        elif name in params:
            argv += _render_parameter(params[name], value)
        elif command == "resume" and name in {parameter_keyword(p) for p in flow_parameters(flow_cls)}:
            raise RunnerValueError(f"resume() of {flow_cls.__name__} takes no flow parameters, got {name!r}.",
                                   hint="A resume keeps the origin run's parameters; start a new run() to change "
                                        "them.")
        else:
            what = f"{command}() of {flow_cls.__name__}"
            groups = {f"{command} options": sorted(options), "flow parameters": sorted(params)}
            raise _unknown(name, what, groups)
    for key, p in params.items():
        if kwargs.get(key) is None and p.required and p.default is None \
                and not env.get("HEADWATER_RUN_" + p.name.upper().replace("-", "_")):
            e = missing_required(p)
            raise RunnerValueError(e.message, hint=e.hint)
    return positional + argv


def check_with_cli(flow_cls: type, command: str, argv: list[str]) -> None:
    """Parse ``argv`` with the flow's own click command; a value click cannot convert raises
    RunnerTypeError (other usage errors RunnerValueError) carrying exactly the message the
    CLI prints after ``Error:``."""
    import click

    cmd = _cli_for(flow_cls).commands[command]
    try:
        ctx = cmd.make_context(command, list(argv))
    except click.ClickException as e:
        # No hint added: str(error) is exactly what the CLI prints after "Error: ".
        error = RunnerTypeError if isinstance(e, click.BadParameter) else RunnerValueError
        raise error(e.format_message()) from None
    ctx.close()


_clis: dict[type, Any] = {}


def _cli_for(flow_cls: type) -> Any:
    cli = _clis.get(flow_cls)
    if cli is None:
        from ..cli.flow_cli import build_cli

        cli = _clis[flow_cls] = build_cli(flow_cls)
    return cli
