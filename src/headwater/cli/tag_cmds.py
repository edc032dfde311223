"""``python flow.py tag add|remove|replace|list``: change and list the tags of runs (interface layer).

Behaves as Metaflow's ``tag`` commands, which scripts parse: ``add``/``remove``/``replace``
need ``--run-id`` and check the run is in the namespace (``--namespace``, default
``user:<you>``); ``list`` prints Metaflow's column table on stdout (or, with ``--quiet``,
its ``;``-separated lines), ``--flat`` one tag a line on stderr.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from itertools import chain
from typing import Any

import click

from ..exceptions import HeadwaterNamespaceMismatch, HeadwaterNotFound, InvalidCommandUse
from ..tags import shown_tag
from .errors import guarded
from .inspect_cmds import _use_root

#: Metaflow lays tags out in columns over this width, four spaces apart.
TABLE_WIDTH = 120
COLUMN_GAP = 4
TABLE_HEADER = "\nSystem tags and tags; only tags can be modified\n" + "-" * 56 + "\n\n"

# A group's tags: {group (a run pathspec, a tag, or the joined pathspecs): tags or runs}.
Groups = dict[str, set[str]]


def add_tag_commands(cli: click.Group, flow_cls: type) -> None:
    """Add the ``tag`` command group to the per-flow CLI of ``flow_cls``."""
    flow = flow_cls.__name__

    @cli.group(help="Add, remove, replace or list the user tags of runs (system tags cannot change).",
               short_help="Add, remove, replace or list the tags of runs.")  # fmt: skip
    def tag() -> None:
        pass

    run_id_opt = click.option("--run-id", default=None, metavar="RUN_ID", help="The run to tag. [required]")
    ns_opt = click.option("--namespace", "user_namespace", default=None, metavar="NAMESPACE",
                          help="The namespace the run must be in (default: user:<you>).")  # fmt: skip

    @tag.command("add", help="Add tags to a run.")
    @run_id_opt
    @ns_opt
    @click.argument("tags", nargs=-1, required=True)
    @click.pass_context
    def tag_add(ctx: click.Context, run_id: str | None, user_namespace: str | None, tags: tuple[str, ...]) -> None:
        guarded(lambda: _change(ctx, flow, run_id, user_namespace, lambda r: r.add_tags(tags), err=False))

    @tag.command("remove", help="Remove tags from a run.")
    @run_id_opt
    @ns_opt
    @click.argument("tags", nargs=-1, required=True)
    @click.pass_context
    def tag_remove(ctx: click.Context, run_id: str | None, user_namespace: str | None, tags: tuple[str, ...]) -> None:
        guarded(lambda: _change(ctx, flow, run_id, user_namespace, lambda r: r.remove_tags(tags), err=True))

    @tag.command("replace", help="Remove some tags and add others, in one change.")
    @run_id_opt
    @ns_opt
    @click.option("--add", "add", multiple=True, metavar="TAG", help="A tag to add (repeatable).")
    @click.option("--remove", "remove", multiple=True, metavar="TAG", help="A tag to remove (repeatable).")
    @click.pass_context
    def tag_replace(ctx: click.Context, run_id: str | None, user_namespace: str | None, add: tuple[str, ...],
                    remove: tuple[str, ...]) -> None:  # fmt: skip
        if not add and not remove:
            raise click.UsageError("Give at least one --add TAG or --remove TAG.")
        guarded(lambda: _change(ctx, flow, run_id, user_namespace, lambda r: r.replace_tags(remove, add), err=True))

    @tag.command("list", help="List the tags of runs: by default every run of the flow, in all namespaces.",
                 short_help="List the tags of runs.")  # fmt: skip
    @click.option("--run-id", default=None, metavar="RUN_ID", help="Only this run.")
    @click.option("--all", "all_runs", is_flag=True, help="Every run of the flow, in all namespaces.")
    @click.option("--my-runs", is_flag=True, help="Only your own runs (the namespace user:<you>).")
    @click.option("--hide-system-tags", is_flag=True, help="Only user tags.")
    @click.option("--group-by-tag", is_flag=True, help="For each tag, the runs that have it.")
    @click.option("--group-by-run", is_flag=True, help="For each run, its tags.")
    @click.option("--flat", is_flag=True, help="One tag a line (on stderr, as Metaflow prints it), no table.")
    @click.argument("arg_run_id", required=False, metavar="[RUN_ID]")
    @click.pass_context
    def tag_list(ctx: click.Context, run_id: str | None, all_runs: bool, my_runs: bool, hide_system_tags: bool,
                 group_by_tag: bool, group_by_run: bool, flat: bool, arg_run_id: str | None) -> None:  # fmt: skip
        def go() -> None:
            chosen = _check_list_options(run_id, arg_run_id, all_runs, my_runs, group_by_tag, group_by_run, flat)
            _use_root(ctx)
            runs = _listed_runs(flow, chosen, all_runs or chosen is None, my_runs)
            system, every = tag_groups(runs, by_run=group_by_run, by_tag=group_by_tag, hide_system=hide_system_tags)
            if flat:
                for t in sorted(chain.from_iterable(every.values())):
                    click.echo(t, err=True)
                return
            click.echo(format_tag_table(system, every, by_tag=group_by_tag, quiet=ctx.obj["quiet"]), nl=False)

        guarded(go)


def _check_list_options(run_id: str | None, arg_run_id: str | None, all_runs: bool, my_runs: bool,
                        group_by_tag: bool, group_by_run: bool, flat: bool) -> str | None:  # fmt: skip
    """The run id ``tag list`` names (``None``: several runs); Metaflow's errors for bad combinations."""
    if all_runs and my_runs:
        raise InvalidCommandUse("Option --all cannot be used together with --my-runs.", hint="Give one of them.")
    if run_id is not None and arg_run_id is not None:
        raise InvalidCommandUse("Specify a run either using --run-id or as an argument but not both.",
                                hint="Drop one of the two.")  # fmt: skip
    if group_by_tag and group_by_run:
        raise InvalidCommandUse("Option --group-by-tag cannot be used with --group-by-run.", hint="Give one of them.")
    if flat and (group_by_tag or group_by_run):
        raise InvalidCommandUse("Option --flat cannot be used with any --group-by-* option.",
                                hint="Drop --flat or the --group-by-* option.")  # fmt: skip
    return run_id if run_id is not None else arg_run_id


def _listed_runs(flow: str, run_id: str | None, all_runs: bool, my_runs: bool) -> list[Any]:
    """The runs ``tag list`` shows: one named run, your runs, or every run (the default)."""
    from ..client import Flow, default_namespace, namespace

    if run_id is not None and not all_runs and not my_runs:
        return [_run_in_namespace(flow, run_id, None)]
    if my_runs:
        default_namespace()
    else:
        namespace(None)
    try:
        return list(Flow(flow))
    except HeadwaterNotFound:
        raise InvalidCommandUse(f"Cannot list tags because the flow {flow} has never been run.",
                                hint=f"Run it first: python {click.get_current_context().find_root().info_name} "
                                     "run.") from None  # fmt: skip


def tag_groups(runs: Iterable[Any], *, by_run: bool, by_tag: bool, hide_system: bool) -> tuple[Groups, Groups]:
    """(system tags, all tags) of ``runs`` grouped as ``tag list`` prints them: by run
    pathspec, by tag (the groups then hold run pathspecs), or all runs as one group."""
    system: Groups = {}
    every: Groups = {}
    names = []
    for run in runs:
        names.append(run.pathspec)
        # Control characters shown escaped: a tag with a newline must not break a row.
        run_tags, run_system = {shown_tag(t) for t in run.tags}, {shown_tag(t) for t in run.system_tags}
        user_tags = run_tags - run_system
        if by_run:
            every[run.pathspec] = user_tags if hide_system else run_tags
            if not hide_system:
                system[run.pathspec] = run_system
        elif by_tag:
            for t in user_tags:
                every.setdefault(t, set()).add(run.pathspec)
            for t in () if hide_system else run_system:
                system.setdefault(t, set()).add(run.pathspec)
        else:
            every.setdefault("_", set()).update(user_tags if hide_system else run_tags)
            if not hide_system:
                system.setdefault("_", set()).update(run_system)
    if not by_run and not by_tag:
        joined = ",".join(names)
        system, every = {joined: system.get("_", set())}, {joined: every.get("_", set())}
    return system, every


def format_tag_table(system: Groups, every: Groups, *, by_tag: bool, quiet: bool) -> str:
    """The text ``tag list`` prints for grouped tags: Metaflow's column table (its header,
    then one block per group), or with ``quiet`` its one ``;``-separated line per group."""
    out = [] if quiet else [TABLE_HEADER]
    for group in sorted(set(system) | set(every)):
        if by_tag:
            # A tag is user or system; a user tag that looks like a system one is listed twice.
            for members, is_system in ((every.get(group), False), (system.get(group), True)):
                if members:
                    out.append(_tag_line(group, members, is_system) if quiet else _tag_block(group, members))
        elif quiet:
            tags, sys_tags = every.get(group, set()), system.get(group, set())
            out.append(f"{group} ; {','.join(sorted(sys_tags))} ; {','.join(sorted(tags - sys_tags))}\n")
        else:
            out.append(_run_block(group, every.get(group, set()), with_header=len(every) != 1))
    return "".join(out)


def _run_block(group: str, tags: set[str], *, with_header: bool) -> str:
    lines = [f"For run {group}"] if with_header else []
    return "\n".join(lines + _columns(sorted(tags)) + [""]) + "\n"


def _tag_block(tag: str, runs: set[str]) -> str:
    return "\n".join([f"For tag {tag}"] + _columns(sorted(runs)) + [""]) + "\n"


def _tag_line(tag: str, runs: set[str], is_system: bool) -> str:
    return f"{'system' if is_system else 'user'}:{tag} ; {','.join(sorted(runs))}\n"


def _columns(words: list[str]) -> list[str]:
    """``words`` in as many columns as fit the table width, filled top to bottom, every
    cell padded to the longest word (as Metaflow lays them out)."""
    width = max((len(w) for w in words), default=0)
    n_cols = (TABLE_WIDTH + COLUMN_GAP) // (width + COLUMN_GAP)
    if n_cols == 0:  # one word wider than the table: one column
        n_cols, n_rows = 1, len(words)
    else:
        n_rows = (len(words) + n_cols - 1) // n_cols
    cells = words + [" "] * (n_rows * n_cols - len(words))
    return [(" " * COLUMN_GAP).join(cells[r + c * n_rows].ljust(width) for c in range(n_cols))
            for r in range(n_rows)]


def _run_in_namespace(flow: str, run_id: str | None, user_namespace: str | None) -> Any:
    """The run ``--run-id`` names, checked against ``user_namespace`` as Metaflow checks it."""
    from ..client import Flow, Run, namespace

    namespace(user_namespace)
    try:
        latest = Flow(flow).latest_run
    except HeadwaterNotFound:
        raise InvalidCommandUse(f"No run found for {flow}. Please run the flow before tagging.",
                                hint="Run the flow first.") from None  # fmt: skip
    except HeadwaterNamespaceMismatch:
        raise InvalidCommandUse(
            f"No run found for {flow} in namespace {user_namespace}. You can switch the namespace using --namespace",
            hint="Pass --namespace NAMESPACE (for example user:<who ran it>).") from None
    if run_id is None:
        where = f"{flow}'s latest run in namespace {user_namespace} has id {latest.id}." if latest else ""
        raise InvalidCommandUse("Please specify a run-id using --run-id.\n" + where,
                                hint=f"For example: tag add --run-id {latest.id if latest else 'RUN_ID'} TAG.")
    if "/" in run_id:
        raise InvalidCommandUse(f"Run-id {run_id} is not a valid run-id",
                                hint="Give the run id alone, without the flow name.")  # fmt: skip
    pathspec = f"{flow}/{run_id}"
    try:
        return Run(pathspec)
    except HeadwaterNamespaceMismatch:
        raise InvalidCommandUse(f"Run {pathspec} for flow {flow} does not belong to namespace {user_namespace}",
                                hint="Pass --namespace with a tag of that run (tag list --all shows them).") from None
    except HeadwaterNotFound:
        raise InvalidCommandUse(f"No run {pathspec} found for flow {flow}",
                                hint="tag list --all shows the runs of the flow.") from None  # fmt: skip


def _change(ctx: click.Context, flow: str, run_id: str | None, user_namespace: str | None,
            change: Callable[[Any], None], *, err: bool) -> None:  # fmt: skip
    from ..client import default_namespace

    _use_root(ctx)
    run = _run_in_namespace(flow, run_id, user_namespace if user_namespace is not None else default_namespace())
    change(run)
    click.echo("Operation successful. New tags:", err=err)
    system, every = tag_groups([run], by_run=True, by_tag=False, hide_system=False)
    click.echo(format_tag_table(system, every, by_tag=False, quiet=ctx.obj["quiet"]), nl=False)


__all__ = ["add_tag_commands", "format_tag_table", "tag_groups"]
