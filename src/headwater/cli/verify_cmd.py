"""``headwater verify``: prove the store intact, or name what is damaged (interface layer).

The work is ``headwater.store.verify``; this module parses options, shows progress on
stderr and prints the report (text or ``--json``). Exit 0: all is well; 1: anything is
damaged, missing or unreadable.
"""

from __future__ import annotations

import json
from typing import Any

import click

from .errors import guarded
from .progress import ProgressLine
from .store_cmds import _root_opt, open_datastore
from .units import counted, size_text

#: References listed per blob in the text report (``--json`` lists them all).
_SHOWN_REFERENCES = 20


def progress_line(p: Any) -> str:
    """``verify: 12/40 blobs, 1.2 GiB of 3.4 GiB, 2.31 GB/s`` for a ``store.verify.Progress``."""
    total = max(p.bytes_total, p.bytes_done)
    return (f"verify: {p.blobs_done}/{p.blobs_total} blobs, {size_text(p.bytes_done)} of {size_text(total)}, "
            f"{p.gb_per_s:.2f} GB/s")


@click.command()
@click.option("--flow", "flows", multiple=True, metavar="FLOW", help="Verify the runs of this flow (repeatable).")
@click.option("--run", "runs", multiple=True, metavar="FLOW/RUN_ID", help="Verify this run (repeatable).")
@click.option("--quarantine", is_flag=True,
              help="Move damaged blobs to the store's quarantine/, so the next save stores them again.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@_root_opt
def verify(flows: tuple[str, ...], runs: tuple[str, ...], quarantine: bool, as_json: bool,
           datastore_root: str | None) -> None:
    """Check the store: every blob the records name exists and matches its key.

    Without --flow or --run, every run is checked, and so is every blob that no
    record names. Each blob is read once, however many runs share it. A damaged
    or missing blob is reported with every run, step, task and artifact that
    refers to it. Exits 1 when anything is damaged, missing or unreadable.
    """

    def go() -> None:
        from ..store.verify import Scope
        from ..store.verify import verify as run_verify

        scope = Scope.parse(flows, runs)
        _, ds = open_datastore(datastore_root)
        show = ProgressLine(enabled=not as_json)
        try:
            report = run_verify(ds.objects, scope, quarantine=quarantine,
                               on_progress=lambda p: show.update(progress_line(p)))
        finally:
            show.close()
        if as_json:
            click.echo(json.dumps(report.as_dict(), indent=2))
        else:
            _print(report, ds.root, quarantine)
        if not report.ok:
            raise SystemExit(1)

    guarded(go)


def _print(report: Any, root: str, quarantine: bool) -> None:
    from ..store.verify import Problem

    for f in report.findings:
        what = "record" if f.problem is Problem.DAMAGED_RECORD else "blob"
        name = f.object if f.problem is Problem.DAMAGED_RECORD else f.key
        click.echo(f"{f.problem.value.upper()} {what} {name}: {f.reason}.")
        if f.problem is not Problem.DAMAGED_RECORD:
            for ref in f.references[:_SHOWN_REFERENCES]:
                click.echo(f"    used by {ref.describe()}")
            if len(f.references) > _SHOWN_REFERENCES:
                click.echo(f"    ... and {len(f.references) - _SHOWN_REFERENCES} more (--json lists them all)")
            if not f.references:
                click.echo("    used by no record (a later save of the same value would reuse it)")
        if f.quarantined:
            click.echo("    moved to quarantine/: the next run that saves this value stores it again.")
        elif f.problem is Problem.DAMAGED and quarantine and f.object.startswith("blobs/"):
            click.echo("    not moved: the key holds another copy now.")
    p = report.progress
    counts = (f"{counted(report.runs, 'run')}, {counted(report.records, 'record')}, {counted(p.blobs_done, 'blob')} "
              f"({size_text(p.bytes_done)} in {p.seconds:.2f} s, {p.gb_per_s:.2f} GB/s), "
              f"{counted(report.inline, 'inline artifact')}")
    if report.ok:
        click.echo(f"Verified {root}: {counts}. No damage.")
        return
    parts = [f"{report.count(kind)} {kind.value}" for kind in Problem if report.count(kind)]
    click.echo(f"Verified {root}: {counts}. Problems: {', '.join(parts)}.")
    if any(f.problem is Problem.DAMAGED and not f.quarantined and f.object.startswith("blobs/")
           for f in report.findings):
        click.echo("Run `headwater verify --quarantine` to move damaged blobs aside, then re-run the steps "
                   "that produced them (or the flows): the blobs are stored again and every run that uses "
                   "them is repaired.")
    elif any(f.problem is not Problem.UNREADABLE for f in report.findings):
        click.echo("Re-run the steps that produced the missing or damaged data (run the flow again, or "
                   "resume from those steps).")
