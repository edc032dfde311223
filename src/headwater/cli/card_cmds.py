"""``python flow.py card get|view|list``: read the cards of this flow's tasks (interface layer).

Cards are read through ``headwater.cards.get_cards``, pinned to the flow CLI's
datastore root; explicit pathspecs ignore the namespace, as ``logs`` does.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from typing import Any

import click

from ..exceptions import HeadwaterInvalidPathspec, HeadwaterNotFound
from .errors import guarded
from .inspect_cmds import _default_run, _id_key, _use_root, split_pathspec

_TASK_HELP = ("RUN_ID/STEP/TASK_ID (or RUN_ID/STEP when the step has one task), optionally prefixed with the flow "
              "name; or a bare STEP: the newest task of that step in the latest run.")


def add_card_commands(cli: click.Group, flow_cls: type) -> None:
    """Add the ``card`` command group to the per-flow CLI of ``flow_cls``."""
    flow = flow_cls.__name__

    @cli.group(help="Read the cards (HTML reports) of this flow's tasks.", short_help="Read the cards of tasks.")
    def card() -> None:
        pass

    id_opt = click.option("--id", "card_id", default=None, metavar="ID", help="Only the card with this @card(id=...).")
    type_opt = click.option("--type", "card_type", default=None, metavar="TYPE", help="Only cards of this type.")
    hash_opt = click.option("--hash", "card_hash", default=None, metavar="HASH",
                            help="Only the card whose hash starts so.")

    @card.command("get", help=f"Print a task's card as HTML, or write it to FILE; when several cards match, list "
                               f"them instead.\n\nPATHSPEC: {_TASK_HELP}")
    @click.argument("pathspec")
    @click.argument("file", required=False, type=click.Path(dir_okay=False, writable=True))
    @id_opt
    @type_opt
    @hash_opt
    @click.pass_context
    def card_get(ctx: click.Context, pathspec: str, file: str | None, card_id: str | None,
                 card_type: str | None, card_hash: str | None) -> None:  # fmt: skip
        def go() -> None:
            _use_root(ctx)
            found = _one_card(ctx, flow, pathspec, CardFilter(card_id, card_type, card_hash), "get")
            if found is None:
                return
            html = found.get()
            if file:
                with open(file, "w", encoding="utf-8") as f:
                    f.write(html)
                click.echo(f"Wrote card {found.name} of {found.pathspec} to {file}.", err=True)
            else:
                click.echo(html, nl=False)

        guarded(go)

    @card.command("view", help=f"Open a task's card in the web browser; when several cards match, list them "
                                f"instead.\n\nPATHSPEC: {_TASK_HELP}")
    @click.argument("pathspec")
    @id_opt
    @type_opt
    @hash_opt
    @click.option("--no-open", is_flag=True, help="Only write the card to a temporary file and print its path.")
    @click.pass_context
    def card_view(ctx: click.Context, pathspec: str, card_id: str | None, card_type: str | None,
                  card_hash: str | None, no_open: bool) -> None:  # fmt: skip
        def go() -> None:
            _use_root(ctx)
            found = _one_card(ctx, flow, pathspec, CardFilter(card_id, card_type, card_hash), "view")
            if found is None:
                return
            path = found.view(open_browser=not no_open)
            click.echo(path)

        guarded(go)

    @card.command("list", help="List the cards of a task (or the only task of a step); of every task of a run or "
                               "step; or, without PATHSPEC, of the latest run in the current namespace.\n\n"
                               "PATHSPEC: RUN_ID, RUN_ID/STEP or RUN_ID/STEP/TASK_ID, optionally prefixed with the "
                               "flow name.", short_help="List cards.")  # fmt: skip
    @click.argument("pathspec", required=False)
    @id_opt
    @type_opt
    @click.option("--hash", "card_hash", default=None, metavar="HASH", help="Only the card whose hash starts so.")
    @click.option("--as-json", is_flag=True, help="Print JSON ({pathspec, cards: [{id, hash, type, filename}]}).")
    @click.option("--file", "file", default=None, metavar="FILE", help="Write the JSON to FILE instead (with "
                                                                           "--as-json).")  # fmt: skip
    @click.pass_context
    def card_list(ctx: click.Context, pathspec: str | None, card_id: str | None, card_type: str | None,
                  card_hash: str | None, as_json: bool, file: str | None) -> None:  # fmt: skip
        def go() -> None:
            from ..cards import get_cards

            _use_root(ctx)
            run_pathspec, tasks, many = _task_pathspecs(flow, pathspec)
            found = []
            for tp in tasks:
                cards = [c for c in get_cards(tp, id=card_id, type=card_type)
                         if card_hash is None or c.hash.startswith(card_hash)]
                if cards:
                    found.append((tp, cards))
            if not found:
                what = "".join(f" with {k} {v!r}" for k, v in (("id", card_id), ("type", card_type),
                                                                ("hash", card_hash)) if v)  # fmt: skip
                raise HeadwaterNotFound(f"Card{what} not found for pathspec {pathspec or run_pathspec}.",
                                        hint="Add @card to a step (or run with --with card) to get a card.")
            if as_json:
                docs = [card_list_json(tp, cards) for tp, cards in found]
                doc: Any = docs if many else docs[0]
                if file:
                    with open(file, "w", encoding="utf-8") as f:
                        json.dump(doc, f)
                else:
                    click.echo(json.dumps(doc, indent=4))
            elif not ctx.obj["quiet"]:
                text = format_card_listing(run_pathspec, found) if many else format_task_cards(*found[0])
                click.echo(text, err=True)

        guarded(go)


def card_filename(card: Any) -> str:
    """The name of the card's HTML file (``<type>[-<id>]-<n>.html``), as ``Card Path`` ends."""
    return os.path.basename(card.path)


def card_list_json(task_pathspec: str, cards: list[Any]) -> dict[str, Any]:
    """One task's cards as ``card list --as-json`` prints them (Metaflow's shape)."""
    return {"pathspec": task_pathspec,
            "cards": [{"id": c.id, "hash": c.hash, "type": c.type, "filename": card_filename(c)} for c in cards]}


def _card_blocks(cards: list[Any]) -> str:
    """The indented ``Card Id / Type / Hash / Path`` block of each card, as Metaflow lays them out."""
    pad = " " * 8
    blocks = [f"\n{pad}Card Id: {c.id}\n{pad}Card Type: {c.type}\n{pad}Card Hash: {c.hash}\n"
              f"{pad}Card Path: {c.path}\n{pad}" for c in cards]
    return "\n\t".join(["", *blocks]) + "\n"


def format_task_cards(task_pathspec: str, cards: list[Any]) -> str:
    """The text ``card list TASK`` prints (on stderr, as Metaflow does)."""
    return (f"Resolving card: {task_pathspec}\nFound {len(cards)} card matching for your query...\n"
            + _card_blocks(cards))


def format_card_listing(run_pathspec: str, found: list[tuple[str, list[Any]]]) -> str:
    """The text ``card list`` prints for several tasks: per step, per task, its cards."""
    lines = [f"Listing cards for run {run_pathspec}"]
    step = None
    for tp, cards in found:
        if tp.split("/")[2] != step:
            step = tp.split("/")[2]
            lines.append(f"Step : {step}")
        lines.append(f"\tTask: {tp.split('/')[-1]}")
        lines.append(_card_blocks(cards))
    return "\n".join(lines)


@dataclass(frozen=True)
class CardFilter:
    """Which of a task's cards ``card get|view`` mean: ``--id``, ``--type`` and a ``--hash`` prefix."""

    id: str | None = None
    type: str | None = None
    hash: str | None = None

    def describe(self) -> str:
        """``id 'x' and hash 'ab'``: the filters given, for messages."""
        return " and ".join(f"{k} {v!r}" for k, v in (("id", self.id), ("type", self.type), ("hash", self.hash)) if v)


#: How many leading hex digits of a card's hash the example command passes to --hash (as Metaflow).
SHORT_HASH = 5


def choose_card_hint(script: str, task_pathspec: str, cards: list[Any], command: str) -> str:
    """The line after a listing of several cards: a command that picks one of them by hash."""
    task = "/".join(task_pathspec.split("/")[1:])
    return (f"\n\tExample access from CLI via: \n\t >>> python {script} card {command} {task} "
            f"--hash {cards[0].hash[:SHORT_HASH]}\n")


def _one_card(ctx: click.Context, flow: str, pathspec: str, which: CardFilter, command: str) -> Any:
    """The one card ``pathspec`` and ``which`` name; None after listing them when several match
    (as Metaflow, on stderr and exit status 0; nothing with ``--quiet``)."""
    from ..cards import get_cards

    task = _one_task(flow, pathspec, f"card {command}")
    cards = [c for c in get_cards(task, id=which.id, type=which.type)
             if which.hash is None or c.hash.startswith(which.hash)]
    if not cards:
        what = which.describe()
        everything = get_cards(task)
        hint = (f"Its cards: {', '.join(c.name for c in everything)}." if everything and what
                else "Add @card to the step (or run with --with card) to get a card.")
        raise HeadwaterNotFound(f"Task '{task}' has no card{' with ' + what if what else ''}.", hint=hint)
    quiet = ctx.obj["quiet"]
    if len(cards) > 1:
        if not quiet:
            script = os.path.basename(sys.argv[0])
            click.echo(format_task_cards(task, cards), err=True)
            click.echo(choose_card_hint(script, task, cards, command), err=True)
        return None
    if not quiet:
        click.echo(f"Resolving card: {task}", err=True)
    return cards[0]


def _step_task_ids(flow: str, run_id: str, step: str) -> list[str]:
    from ..client import Step

    return sorted((t.id for t in Step(f"{flow}/{run_id}/{step}", _namespace_check=False)), key=_id_key)


def _one_task(flow: str, pathspec: str, command: str) -> str:
    if "/" not in pathspec.strip("/"):
        return _newest_task_of_latest_run(flow, pathspec.strip("/"), command)
    run_id, step, task_id = split_pathspec(flow, pathspec, command)
    if task_id is not None:
        return f"{flow}/{run_id}/{step}/{task_id}"
    ids = _step_task_ids(flow, run_id, step)
    if len(ids) != 1:
        shown = ", ".join(ids[:20]) + (", ..." if len(ids) > 20 else "")
        raise HeadwaterInvalidPathspec(
            f"{command}: step '{flow}/{run_id}/{step}' has {len(ids)} tasks ({shown}); name one.",
            hint=f"For example: {command} {run_id}/{step}/{ids[0] if ids else 'TASK_ID'}.")
    return f"{flow}/{run_id}/{step}/{ids[0]}"


def _newest_task_of_latest_run(flow: str, step: str, command: str) -> str:
    """A bare STEP, as in Metaflow: the latest run in the current namespace, the newest task of that step."""
    run = _default_run(flow)
    task = run[step].task if step in run else None
    if task is None:
        steps = ", ".join(s.id for s in run)
        raise HeadwaterNotFound(
            f"{command}: the latest run of {flow} ({run.pathspec}) has no task of step {step!r}.",
            hint=f"Its steps: {steps}. Or name another run: {command} RUN_ID/{step}.")
    return str(task.pathspec)


def _task_pathspecs(flow: str, pathspec: str | None) -> tuple[str, list[str], bool]:
    """(run pathspec, task pathspecs, whether that is a listing of many) for ``card list``: a
    task or the only task of a step is one; a run, a step of several tasks or no pathspec is many."""
    from ..client import Run

    if pathspec is None:
        run = _default_run(flow)
        run_id, step, task_id = run.id, None, None
    else:
        parts = pathspec.strip("/").split("/")
        if parts and parts[0] == flow and len(parts) > 1:
            parts = parts[1:]
        if len(parts) == 1 and parts[0]:
            run_id, step, task_id = parts[0], None, None
        else:
            run_id, step, task_id = split_pathspec(flow, "/".join(parts), "card list")
    run_pathspec = f"{flow}/{run_id}"
    if task_id is not None:
        return run_pathspec, [f"{run_pathspec}/{step}/{task_id}"], False
    steps = [step] if step else [s.id for s in Run(run_pathspec, _namespace_check=False)]
    if not step:
        steps.reverse()  # oldest step first
    tasks = [f"{run_pathspec}/{s}/{t}" for s in steps for t in _step_task_ids(flow, run_id, s)]
    return run_pathspec, tasks, step is None or len(tasks) != 1


__all__ = ["CardFilter", "add_card_commands", "card_list_json", "choose_card_hint", "format_card_listing",
           "format_task_cards"]
