"""``python flow.py logs|dump|tag``: look at past runs of this flow (interface layer).

The commands read through the client (``headwater.client``), pinned to the
flow CLI's datastore root, and import it inside their bodies so ``--help``
stays light. ``logs`` and ``dump`` take explicit pathspecs and ignore the
namespace; ``tag`` defaults to the latest run in the current namespace.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import click

from ..exceptions import HeadwaterException, HeadwaterInvalidPathspec, HeadwaterNamespaceMismatch, HeadwaterNotFound
from .errors import guarded

_PATHSPEC_HELP = "RUN_ID/STEP or RUN_ID/STEP/TASK_ID, optionally prefixed with the flow name."


def add_inspect_commands(cli: click.Group, flow_cls: type) -> None:
    """Add ``logs``, ``dump`` and ``tag`` to the per-flow CLI of ``flow_cls``."""
    flow = flow_cls.__name__

    @cli.command(help=f"Show the logs of a task, or of every task of a step.\n\nPATHSPEC: {_PATHSPEC_HELP}")
    @click.argument("pathspec")
    @click.option("--stdout", "want_stdout", is_flag=True, help="Only the stdout log.")
    @click.option("--stderr", "want_stderr", is_flag=True, help="Only the stderr log.")
    @click.option("--both", is_flag=True, help="stdout, then stderr (the default).")
    @click.option("--attempt", type=click.IntRange(min=0), default=None, help="Which attempt (default: the latest).")
    @click.option("--timestamps", is_flag=True, help="Prefix each line with the local time it was written.")
    @click.pass_context
    def logs(ctx: click.Context, pathspec: str, want_stdout: bool, want_stderr: bool, both: bool,
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
            out.flush()

        guarded(go)

    @cli.command(help=f"Show (or save) the artifacts of a task, or of every task of a step.\n\n"
                      f"PATHSPEC: {_PATHSPEC_HELP}", short_help="Show or save the artifacts of a task or step.")  # fmt: skip
    @click.argument("pathspec")
    @click.option("--include", default=None, metavar="A,B", help="Only these artifacts (comma-separated).")
    @click.option("--private", is_flag=True, help="Include _private artifacts.")
    @click.option("--max-value-size", type=click.IntRange(min=0), default=1000, show_default=True,
                  help="Cut each value's repr to this many characters; 0 shows names, types and sizes only.")
    @click.option("--file", "file", default=None, metavar="FILE",
                  help="Write a pickled {pathspec: {name: value}} to FILE instead of printing.")
    @click.pass_context
    def dump(ctx: click.Context, pathspec: str, include: str | None, private: bool, max_value_size: int,
             file: str | None) -> None:  # fmt: skip
        wanted = [n.strip() for n in include.split(",") if n.strip()] if include else None

        def go() -> None:
            _use_root(ctx)
            tasks = _tasks(flow, pathspec, "dump")
            if file:
                data = {t.pathspec: {n: getattr(t.data, n) for n in _names(t, wanted, private)} for t in tasks}
                with open(file, "wb") as f:
                    pickle.dump(data, f, protocol=pickle.HIGHEST_PROTOCOL)
                n = sum(len(v) for v in data.values())
                click.echo(f"Wrote {n} artifact{'s' if n != 1 else ''} of {len(data)} "
                           f"task{'s' if len(data) != 1 else ''} to {file}.", err=True)  # fmt: skip
                return
            for task in tasks:
                click.echo(_format_task(task, _names(task, wanted, private), max_value_size))

        guarded(go)

    @cli.group(help="Add, remove, replace or list the user tags of runs (system tags cannot change).",
               short_help="Add, remove, replace or list the tags of runs.")  # fmt: skip
    def tag() -> None:
        pass

    run_id_opt = click.option("--run-id", default=None, metavar="RUN_ID",
                              help="The run (default: the latest run in the current namespace).")  # fmt: skip

    @tag.command("add", help="Add tags to a run.")
    @run_id_opt
    @click.argument("tags", nargs=-1, required=True)
    @click.pass_context
    def tag_add(ctx: click.Context, run_id: str | None, tags: tuple[str, ...]) -> None:
        guarded(lambda: _change(ctx, flow, run_id, lambda r: r.add_tags(tags), f"Added {_plural(tags)} to"))

    @tag.command("remove", help="Remove tags from a run.")
    @run_id_opt
    @click.argument("tags", nargs=-1, required=True)
    @click.pass_context
    def tag_remove(ctx: click.Context, run_id: str | None, tags: tuple[str, ...]) -> None:
        guarded(lambda: _change(ctx, flow, run_id, lambda r: r.remove_tags(tags), f"Removed {_plural(tags)} from"))

    @tag.command("replace", help="Remove some tags and add others, in one change.")
    @run_id_opt
    @click.option("--add", "add", multiple=True, metavar="TAG", help="A tag to add (repeatable).")
    @click.option("--remove", "remove", multiple=True, metavar="TAG", help="A tag to remove (repeatable).")
    @click.pass_context
    def tag_replace(ctx: click.Context, run_id: str | None, add: tuple[str, ...], remove: tuple[str, ...]) -> None:
        if not add and not remove:
            raise click.UsageError("Give at least one --add TAG or --remove TAG.")
        what = f"Replaced {_plural(remove)} by {_plural(add)} on" if remove and add else (
            f"Added {_plural(add)} to" if add else f"Removed {_plural(remove)} from")  # fmt: skip
        guarded(lambda: _change(ctx, flow, run_id, lambda r: r.replace_tags(remove, add), what))

    @tag.command("list", help="List the tags of runs: by default every run in the current namespace.",
                 short_help="List the tags of runs.")  # fmt: skip
    @run_id_opt
    @click.option("--all", "all_runs", is_flag=True, help="Every run of the flow, in all namespaces.")
    @click.option("--my-runs", is_flag=True, help="Only your own runs (the namespace user:<you>).")
    @click.option("--hide-system-tags", is_flag=True, help="Only user tags.")
    @click.option("--flat", is_flag=True,
                  help="One tag per line, sorted, for scripts: every tag of the runs listed, on stderr as Metaflow "
                       "prints it.")
    @click.argument("arg_run_id", required=False, metavar="[RUN_ID]")
    @click.pass_context
    def tag_list(ctx: click.Context, run_id: str | None, all_runs: bool, my_runs: bool, hide_system_tags: bool,
                 flat: bool, arg_run_id: str | None) -> None:  # fmt: skip
        if run_id is not None and arg_run_id is not None:
            raise click.UsageError("Name the run either with --run-id or as an argument, not both.")
        if all_runs and my_runs:
            raise click.UsageError("Option --all cannot be used together with --my-runs.")
        run_id = run_id if run_id is not None else arg_run_id

        def go() -> None:
            from ..client import Flow, default_namespace, namespace

            _use_root(ctx)
            if run_id is not None:
                runs = [_open_run(flow, run_id)]
            else:
                if all_runs:
                    namespace(None)
                elif my_runs:
                    default_namespace()
                runs = list(_flow(Flow, flow))
            if flat:
                tags = set().union(*(r.user_tags if hide_system_tags else r.tags for r in runs))
                for t in sorted(tags):
                    click.echo(t, err=True)
                return
            if not runs:
                click.echo(f"No runs of {flow} in the namespace.", err=True)
            for run in runs:
                click.echo(_format_tags(run, hide_system_tags), err=True)

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


def _names(task: Any, wanted: list[str] | None, private: bool) -> list[str]:
    names = sorted(n for n in task._refs() if private or not n.startswith("_"))
    if wanted is not None:
        names = [n for n in wanted if n in names]
    return names


def _format_task(task: Any, names: list[str], max_size: int) -> str:
    head = f"{task.pathspec} (attempt {task.current_attempt})"
    rec = task._record_or_none()
    if rec is None:
        from ..meta.liveness import run_status

        if task._get_row().status == "running" and run_status(task._get_run_row()) == "running":
            return f"{head}: still running, no artifacts yet."
        return f"{head}: ended without committing (killed or crashed); no artifacts."
    failed = rec.get("status") != "ok"
    if failed:  # a failed attempt keeps what its step set before failing
        head += f": failed ({task.exception})"
        if not names:
            return f"{head}; no artifacts."
    elif not names:
        return f"{head}: no artifacts to show."
    lines = [f"{head}; its artifacts:" if failed else f"{head}:"]
    refs = task._refs()
    for name in names:
        if max_size == 0:
            ref = refs[name]
            lines.append(f"    {name}  <{ref.get('type', '?')}, {ref.get('size', '?')} bytes>")
            continue
        try:
            text = repr(getattr(task.data, name))
        except HeadwaterException as e:
            text = f"<cannot load: {e.message}>"
        if len(text) > max_size:
            text = text[:max_size] + f"... ({len(text) - max_size} more characters)"
        lines.append(f"    {name} = " + text.replace("\n", "\n" + " " * (7 + len(name))))
    return "\n".join(lines)


# -- tag -------------------------------------------------------------------------------------


def _plural(tags: Iterable[str]) -> str:
    tags = list(tags)
    return f"tag{'s' if len(tags) != 1 else ''} " + ", ".join(repr(t) for t in tags)


def _flow(flow_cls: Callable[..., Any], flow: str) -> Any:
    """``Flow(flow)`` with a CLI hint when the namespace hides it."""
    try:
        return flow_cls(flow)
    except HeadwaterNamespaceMismatch as e:
        raise HeadwaterNamespaceMismatch(
            e.message, hint="Name a run with --run-id RUN_ID (tag list --all shows every user's runs)."
        ) from None


def _open_run(flow: str, run_id: str) -> Any:
    from ..client import Run

    # An explicit run id is unambiguous: no namespace check.
    return Run(f"{flow}/{run_id}", _namespace_check=False)


def _default_run(flow: str) -> Any:
    from ..client import Flow, get_namespace

    run = _flow(Flow, flow).latest_run
    if run is None:
        raise HeadwaterNotFound(f"Flow {flow} has no runs in the current namespace {get_namespace()!r}.",
                                hint="Name a run with --run-id RUN_ID.")  # fmt: skip
    return run


def _change(ctx: click.Context, flow: str, run_id: str | None, change: Callable[[Any], None], what: str) -> None:
    _use_root(ctx)
    run = _open_run(flow, run_id) if run_id is not None else _default_run(flow)
    change(run)
    click.echo(f"{what} run {run.pathspec}.", err=True)
    click.echo(_format_tags(run, hide_system=True), err=True)


def _format_tags(run: Any, hide_system: bool) -> str:
    lines = [run.pathspec, "    user tags:   " + (", ".join(sorted(run.user_tags)) or "(none)")]
    if not hide_system:
        lines.append("    system tags: " + ", ".join(sorted(run.system_tags)))
    return "\n".join(lines)


__all__ = ["add_inspect_commands", "split_pathspec"]
