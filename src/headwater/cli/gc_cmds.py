"""``headwater gc`` and ``headwater delete``: remove old runs and the blobs nothing else uses
(interface layer).

The work is ``headwater.store.gc``; this module parses options, shows progress on stderr
(``cli.progress``) and prints what went (or, with ``--dry-run``, what would go). Like
``headwater tag`` and ``reindex``, they act without asking: ``--dry-run`` is the preview.
"""

from __future__ import annotations

import json
from typing import Any

import click

from .errors import guarded
from .progress import ProgressLine
from .store_cmds import _root_opt, open_datastore
from .units import counted, size_text

#: Runs listed by name in the text report (``--json`` lists them all).
_SHOWN_RUNS = 50


def _collect(datastore_root: str | None, retention: Any, *, dry_run: bool, as_json: bool, verb: str) -> None:
    """Plan, then (unless ``dry_run``) sweep, and report; shared by ``gc`` and ``delete``."""
    from ..meta import open_index
    from ..meta.liveness import run_is_dead
    from ..store.gc import collect

    settings, ds = open_datastore(datastore_root)
    show = ProgressLine(enabled=not as_json)

    def progress(p: Any) -> None:
        show.update(f"{verb}: {p.phase}", p.done, p.total)

    index = None if dry_run else open_index(ds.root, records=ds.records, provider=settings.metadata)
    try:
        the_plan, result = collect(ds.objects, retention, index=index, dry_run=dry_run,
                                   is_dead=lambda rec: run_is_dead(rec, ended=False), on_progress=progress)
    finally:
        show.close()
        if index is not None:
            index.close()
    if as_json:
        click.echo(json.dumps(_as_dict(the_plan, result, dry_run), indent=2))
    else:
        _print(the_plan, result, ds.root, dry_run, verb)


def _as_dict(the_plan: Any, result: Any, dry_run: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "root": the_plan.root, "dry_run": dry_run,
        "removed_runs": [r.pathspec for r in the_plan.removed],
        "kept_runs": {r.pathspec: r.keep.value for r in the_plan.kept},
        "blobs": len(the_plan.blobs), "blob_bytes": the_plan.blob_bytes,
        "records": len(the_plan.records), "record_bytes": the_plan.record_bytes,
    }
    if result is not None:
        out["result"] = result.as_dict()
    return out


def _print(the_plan: Any, result: Any, root: str, dry_run: bool, verb: str) -> None:
    from ..store.gc import Keep
    from ..store.pins import PIN_GRACE

    removed = the_plan.removed
    lead = "Would remove" if dry_run else "Removed"
    for r in removed[:_SHOWN_RUNS]:
        click.echo(f"{'would remove' if dry_run else 'removed'} {r.pathspec}")
    if len(removed) > _SHOWN_RUNS:
        click.echo(f"... and {len(removed) - _SHOWN_RUNS} more runs (--json lists them all)")
    kept = the_plan.kept
    in_progress = sum(1 for r in kept if r.keep is Keep.IN_PROGRESS)
    note = f" ({in_progress} in progress)" if in_progress else ""
    if result is None:
        click.echo(f"{lead} {counted(len(removed), 'run')} of {root}, keeping {counted(len(kept), 'run')}{note}: "
                   f"{counted(len(the_plan.blobs), 'blob')} ({size_text(the_plan.blob_bytes)}) and "
                   f"{counted(len(the_plan.records), 'record and log file')} ({size_text(the_plan.record_bytes)}) would be freed.")
        return
    spared = (f"; {counted(result.blobs_spared, 'blob')} still pinned (by a run in progress, one that ended less than "
              f"{PIN_GRACE / 3600:.0f} h ago, or another writer): a later gc frees those no record names"
              if result.blobs_spared else "")
    click.echo(f"{lead} {counted(result.runs_removed, 'run')} of {root}, keeping {counted(len(kept), 'run')}{note}: freed "
               f"{size_text(result.blob_bytes)} in {counted(result.blobs_deleted, 'blob')} and "
               f"{size_text(result.record_bytes)} in {counted(result.records_deleted, 'record and log file')}{spared}.")


@click.command()
@click.option("--keep-last", type=click.IntRange(min=0), default=None, metavar="N",
              help="Keep the newest N runs of each flow (N >= 1).")
@click.option("--keep-newer-than", default=None, metavar="AGE",
              help="Keep runs started less than AGE ago (30d, 12h, 90m, 45s, 2w).")
@click.option("--keep-tag", "keep_tags", multiple=True, metavar="TAG",
              help="Keep runs with this tag (repeatable; user or system tags such as user:alice).")
@click.option("--keep-run", "keep_runs", multiple=True, metavar="FLOW/RUN_ID", help="Keep this run (repeatable).")
@click.option("--flow", "flows", multiple=True, metavar="FLOW",
              help="Only runs of this flow may be removed (repeatable; default: every flow).")
@click.option("--dry-run", is_flag=True, help="Print what would be removed and the bytes freed; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@_root_opt
def gc(keep_last: int | None, keep_newer_than: str | None, keep_tags: tuple[str, ...], keep_runs: tuple[str, ...],
       flows: tuple[str, ...], dry_run: bool, as_json: bool, datastore_root: str | None) -> None:
    """Remove old runs, and every blob that no remaining run uses.

    A run is kept when ANY policy keeps it; a run in progress is always kept.
    At least one policy is required: gc never removes every run by default.
    Removed runs lose their records, logs, cards and index rows. A blob is
    deleted only when no kept record names it, so a blob shared with a kept
    run stays. Safe while flows run (see docs/store.md).
    """

    def go() -> None:
        from ..store.gc import Retention, parse_duration, parse_runs

        retention = Retention(
            keep_last=keep_last,
            keep_newer_than=parse_duration(keep_newer_than) if keep_newer_than is not None else None,
            keep_tags=tuple(keep_tags), keep_runs=parse_runs(keep_runs, "--keep-run"), flows=tuple(flows))
        _collect(datastore_root, retention, dry_run=dry_run, as_json=as_json, verb="gc")

    guarded(go)


@click.command()
@click.argument("pathspecs", nargs=-1, required=True, metavar="FLOW/RUN_ID...")
@click.option("--dry-run", is_flag=True, help="Print what would be removed and the bytes freed; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@_root_opt
def delete(pathspecs: tuple[str, ...], dry_run: bool, as_json: bool, datastore_root: str | None) -> None:
    """Delete runs for good: their records, logs, cards, index rows, and the blobs
    that nothing else uses (blobs shared with other runs stay).

    For compliance deletions. A run in progress is refused.
    """

    def go() -> None:
        from ..store.gc import Retention, parse_runs

        retention = Retention(delete=parse_runs(pathspecs, "delete"))
        _collect(datastore_root, retention, dry_run=dry_run, as_json=as_json, verb="delete")

    guarded(go)
