"""``python flow.py logs [show|scrub]|dump``: look at past tasks of this flow (interface layer).

The commands read through the client (``headwater.client``), pinned to the
flow CLI's datastore root, and import it inside their bodies so ``--help``
stays light. They take explicit pathspecs and ignore the namespace, and print
what Metaflow prints (``dump``: one ``name [size: N type: T] = value`` line per
artifact). Helpers shared with ``tag_cmds`` and ``card_cmds`` live here too.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from datetime import datetime
from typing import Any

import click

from ..exceptions import (CommandNotSupported, HeadwaterException, HeadwaterInvalidPathspec,
                          HeadwaterNamespaceMismatch, HeadwaterNotFound)
from .errors import guarded

_PATHSPEC_HELP = "RUN_ID/STEP or RUN_ID/STEP/TASK_ID, optionally prefixed with the flow name."
#: What ``dump`` prints for a value over ``--max-value-size`` (Metaflow's words).
TOO_LARGE = "< artifact too large >"


class DefaultCommandGroup(click.Group):
    """A group that runs ``default_command`` when the first argument names none of its
    commands: Metaflow's ``logs RUN/STEP`` is ``logs show RUN/STEP``."""

    def __init__(self, *args: Any, default_command: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.default_command = default_command

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)


def add_inspect_commands(cli: click.Group, flow_cls: type) -> None:
    """Add ``logs``, ``dump`` and ``tag`` to the per-flow CLI of ``flow_cls``."""
    flow = flow_cls.__name__

    @cli.group(cls=DefaultCommandGroup, default_command="show",
               help="Show the logs of tasks: `logs show PATHSPEC`, or `logs PATHSPEC` for short.",
               short_help="Show the logs of a task or step.")  # fmt: skip
    def logs() -> None:
        pass

    @logs.command("show", help=f"Show the logs of a task, or of every task of a step.\n\nPATHSPEC: {_PATHSPEC_HELP}")
    @click.argument("pathspec")
    @click.option("--stdout/--no-stdout", "want_stdout", default=False, help="Only the stdout log.")
    @click.option("--stderr/--no-stderr", "want_stderr", default=False, help="Only the stderr log.")
    @click.option("--both/--no-both", default=False, help="stdout, then stderr (the default).")
    @click.option("--attempt", type=click.IntRange(min=0), default=None, help="Which attempt (default: the latest).")
    @click.option("--timestamps/--no-timestamps", default=False, help="Prefix each line with the local time it was written.")
    @click.pass_context
    def logs_show(ctx: click.Context, pathspec: str, want_stdout: bool, want_stderr: bool, both: bool,
                  attempt: int | None, timestamps: bool) -> None:  # fmt: skip
        streams = [s for s, on in (("stdout", want_stdout), ("stderr", want_stderr)) if on]
        if both or not streams:
            streams = ["stdout", "stderr"]

        def go() -> None:
            _use_root(ctx)
            tasks = _tasks(flow, pathspec, "logs", attempt=attempt)
            out = click.get_binary_stream("stdout")
            for task in tasks:
                if len(tasks) > 1:
                    out.write(f"==> {task.pathspec} (attempt {task.current_attempt}) <==\n".encode())
                for stream in streams:
                    _write_log(out, task._log(stream), timestamps)
                note = _damaged_note(task)
                if note is not None:  # the logs are separate files and still show
                    out.flush()
                    click.echo(note, err=True)
            out.flush()

        guarded(go)

    @logs.command("scrub", help=f"Not supported yet: erase the logs of a task or step.\n\nPATHSPEC: {_PATHSPEC_HELP}")
    @click.argument("pathspec")
    @click.option("--stdout/--no-stdout", default=False, help="Scrub stdout.")
    @click.option("--stderr/--no-stderr", default=False, help="Scrub stderr.")
    @click.option("--both/--no-both", default=True, help="Scrub both.")
    @click.option("--attempt", type=click.IntRange(min=0), default=None, help="Which attempt (default: the latest).")
    @click.option("--latest/--all", default=True, help="The latest attempt, or all of them.")
    @click.option("--include-not-done", is_flag=True, help="Also tasks that did not finish.")
    def logs_scrub(pathspec: str, **_options: Any) -> None:
        guarded(lambda: _scrub_not_supported(pathspec))

    @cli.command(help=f"Show (or save) the artifacts of a task, or of every task of a step.\n\n"
                      f"PATHSPEC: {_PATHSPEC_HELP}", short_help="Show or save the artifacts of a task or step.")  # fmt: skip
    @click.argument("pathspec")
    @click.option("--include", default=None, metavar="A,B", help="Only these artifacts (comma-separated).")
    @click.option("--private/--no-private", default=False, help="Include _private artifacts.")
    @click.option("--max-value-size", type=click.IntRange(min=0), default=1000, show_default=True,
                  help="Show values of artifacts up to this many (serialized) bytes; larger ones show as "
                       "'< artifact too large >'.")  # fmt: skip
    @click.option("--file", "file", default=None, metavar="FILE",
                  help="Write a pickled {'RUN/STEP/TASK': {name: value}} to FILE instead of printing.")
    @click.pass_context
    def dump(ctx: click.Context, pathspec: str, include: str | None, private: bool, max_value_size: int,
             file: str | None) -> None:  # fmt: skip
        wanted = {n.strip() for n in include.split(",") if n.strip()} if include else None
        quiet = ctx.obj["quiet"]

        def go() -> None:
            _use_root(ctx)
            tasks = _tasks(flow, pathspec, "dump")
            data: dict[str, dict[str, Any]] = {}
            for task in tasks:
                if not quiet:
                    click.echo(_dump_header(task), err=True)
                note = _unfinished_note(task)
                if note:
                    click.echo(note, err=True)
                    continue
                names = _names(task, wanted, private)
                if file:
                    data[_short_pathspec(task)] = {n: getattr(task.data, n) for n in names}
                elif names:
                    click.echo(format_artifacts(task, names, max_value_size))
            if file:
                with open(file, "wb") as f:
                    pickle.dump(data, f, protocol=pickle.HIGHEST_PROTOCOL)
                if not quiet:
                    click.echo(f"Artifacts written to {file}", err=True)

        guarded(go)


# -- shared helpers ----------------------------------------------------------------------


def _use_root(ctx: click.Context) -> None:
    """Point the client at this CLI's datastore root."""
    from ..client.source import pin_root

    pin_root(ctx.obj["settings"].datastore_root, provider=ctx.obj["settings"].metadata)


def split_pathspec(flow: str, pathspec: str, command: str) -> tuple[str, str, str | None]:
    """``RUN/STEP[/TASK]`` or ``FLOW/RUN/STEP[/TASK]`` → (run id, step, task id or ``None``)."""
    parts = pathspec.strip("/").split("/") if pathspec.strip("/") else []
    if len(parts) in (3, 4) and parts[0] == flow:
        parts = parts[1:]
    elif len(parts) == 4:
        raise HeadwaterInvalidPathspec(
            f"{command}: the pathspec {pathspec!r} names the flow {parts[0]!r}, but this is {flow}.",
            hint=f"Run the {command} command of {parts[0]}'s own file, or drop the flow name.",
        )
    if len(parts) not in (2, 3) or not all(parts):
        raise HeadwaterInvalidPathspec(
            f"{command}: expected RUN_ID/STEP or RUN_ID/STEP/TASK_ID, got {pathspec!r}.",
            hint=f"For example: {command} 1763841234567890/start, or {command} {flow}/1763841234567890/start/1.",
        )
    return parts[0], parts[1], parts[2] if len(parts) == 3 else None


def _tasks(flow: str, pathspec: str, command: str, *, attempt: int | None = None) -> list[Any]:
    """The tasks a pathspec names, oldest task id first; ignores the namespace."""
    from ..client import Step, Task

    run_id, step, task_id = split_pathspec(flow, pathspec, command)
    base = f"{flow}/{run_id}/{step}"
    if task_id is not None:
        return [Task(f"{base}/{task_id}", attempt=attempt, _namespace_check=False)]
    tasks = sorted(Step(base, _namespace_check=False), key=lambda t: _id_key(t.id))
    if attempt is None:
        return tasks
    out = []
    for t in tasks:
        try:
            out.append(Task(t.pathspec, attempt=attempt, _namespace_check=False))
        except HeadwaterNotFound:
            continue  # this task never got that far
    if not out:
        raise HeadwaterNotFound(f"No task of step '{base}' has an attempt {attempt}.",
                                hint="Leave out --attempt to see the latest attempt of each task.")  # fmt: skip
    return out


def _id_key(task_id: str) -> tuple[int, int | str]:
    return (0, int(task_id)) if task_id.isdigit() else (1, task_id)


def _write_log(out: Any, data: bytes, timestamps: bool) -> None:
    from ..store.logs import iter_log, strip_log_bytes

    if not data:
        return
    if not timestamps:
        text = strip_log_bytes(data)
        out.write(text if text.endswith(b"\n") else text + b"\n")
        return
    blank = b" " * 23  # as wide as a stamp: lines without one stay aligned
    for ts, line in iter_log(data):
        stamp = blank if ts is None else datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3].encode()
        out.write(stamp + b" " + line + b"\n")


# -- dump ----------------------------------------------------------------------------------


def _names(task: Any, wanted: set[str] | None, private: bool) -> list[str]:
    """The artifacts to show, sorted by name as Metaflow sorts them."""
    return sorted(n for n in task._refs() if (private or not n.startswith("_")) and (wanted is None or n in wanted))


def _short_pathspec(task: Any) -> str:
    """``RUN/STEP/TASK``: how Metaflow keys ``dump --file``."""
    return "/".join(task.pathspec.split("/")[1:])


def _dump_header(task: Any) -> str:
    run_id, step, task_id = task.pathspec.split("/")[1:]
    return f"Dumping output of run_id={run_id} step={step} task_id={task_id}"


def _damaged_note(task: Any) -> str | None:
    """``PATHSPEC: The record ... is damaged ...`` when the attempt's record cannot be read."""
    from ..store.records import DAMAGED

    rec = task._record_or_none()
    if rec is None or rec.get("status") != DAMAGED:
        return None
    return f"{task.pathspec} attempt {task.current_attempt}: {rec['damaged']}"


def _unfinished_note(task: Any) -> str | None:
    """Why a task has nothing to dump (still running, never committed, or its record is
    damaged), else ``None``."""
    rec = task._record_or_none()
    if rec is not None:
        note = _damaged_note(task)
        return None if note is None else f"    {note}"
    from ..meta.liveness import run_status

    if task._get_row().status == "running" and run_status(task._get_run_row()) == "running":
        return f"    {task.pathspec} is still running: no artifacts yet."
    return f"    {task.pathspec} ended without committing (killed or crashed): no artifacts."


def type_label(type_name: str) -> str:
    """``builtins.int`` -> ``<class 'int'>``: the type as ``str(type(value))`` prints it."""
    return f"<class '{type_name.removeprefix('builtins.')}'>"


def format_artifacts(task: Any, names: list[str], max_value_size: int) -> str:
    """One ``name [size: N type: <class 'T'>] = value`` line per artifact, as Metaflow's ``dump``
    prints them; a value larger than ``max_value_size`` serialized bytes shows as too large."""
    refs = task._refs()
    lines = []
    for name in names:
        ref = refs[name]
        size = int(ref.get("size", 0))
        if size == 0 or size > max_value_size:
            text = TOO_LARGE
        else:
            try:
                text = str(getattr(task.data, name))
            except HeadwaterException as e:
                text = f"<cannot load: {e.message}>"
        lines.append(f"{name} [size: {size} type: {type_label(ref.get('type', '?'))}] = {text}")
    return "\n".join(lines)


def _flow(flow_cls: Callable[..., Any], flow: str) -> Any:
    """``Flow(flow)`` with a CLI hint when the namespace hides it."""
    try:
        return flow_cls(flow)
    except HeadwaterNamespaceMismatch as e:
        raise HeadwaterNamespaceMismatch(
            e.message, hint="Name a run with --run-id RUN_ID (tag list --all shows every user's runs)."
        ) from None


def _default_run(flow: str) -> Any:
    """The latest run of ``flow`` in the current namespace."""
    from ..client import Flow, get_namespace

    run = _flow(Flow, flow).latest_run
    if run is None:
        raise HeadwaterNotFound(f"Flow {flow} has no runs in the current namespace {get_namespace()!r}.",
                                hint="Name a run with --run-id RUN_ID.")  # fmt: skip
    return run


def _scrub_not_supported(pathspec: str) -> None:
    raise CommandNotSupported(
        f"logs scrub {pathspec}: erasing logs is not supported by headwater yet.",
        hint="Logs are files under the datastore's runs/<Flow>/<run>/<step>/<task>/ folder; delete "
             "<attempt>.stdout / <attempt>.stderr there to erase them.")


__all__ = ["add_inspect_commands", "format_artifacts", "split_pathspec", "type_label"]
