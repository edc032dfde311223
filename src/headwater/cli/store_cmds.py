"""``headwater runs|show|reindex``: store-wide views of runs (interface layer).

Read through the client's ``Source`` (index first, records as fallback);
output is plain aligned text, one row per line, for people and for ``grep``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import click

from ..exceptions import HeadwaterInvalidPathspec, HeadwaterNotFound
from ..tags import shown_tag
from .errors import guarded

_root_opt = click.option("--datastore-root", default=None, metavar="PATH",
                         help="Store root (default: HEADWATER_DATASTORE_ROOT, else the nearest .headwater/).")  # fmt: skip


def _settings(datastore_root: str | None) -> Any:
    from ..config import load_settings
    from ..store.roots import normalize_root

    settings = load_settings()
    if datastore_root:
        settings = settings.with_(datastore_root=normalize_root(datastore_root))
    return settings


def _no_datastore(root: str) -> HeadwaterNotFound:
    return HeadwaterNotFound(
        f"There is no datastore at {root}.",
        hint="Run a flow first, or point --datastore-root (or HEADWATER_DATASTORE_ROOT) at its .headwater/.",
    )


def open_datastore(datastore_root: str | None) -> tuple[Any, Any]:
    """The settings and the ``Datastore`` a store command works on; ``HeadwaterNotFound`` if it does not exist."""
    from ..store import Datastore

    settings = _settings(datastore_root)
    ds = Datastore(settings.datastore_root)
    if not ds.exists():
        raise _no_datastore(ds.root)
    return settings, ds


@contextmanager
def _source(root: str) -> Iterator[Any]:
    from ..client.source import Source

    src = Source(root)
    if not src.exists:
        raise _no_datastore(root)
    try:
        yield src
    finally:
        src.close()


# -- formatting -------------------------------------------------------------------------


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns separated by two spaces; the last column is not padded."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    out = []
    for r in [headers, *rows]:
        cells = [str(c).ljust(w) for c, w in zip(r[:-1], widths[:-1])] + [str(r[-1])]
        out.append("  ".join(cells).rstrip())
    return "\n".join(out)


def fmt_time(ts: float | None) -> str:
    return "-" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def fmt_duration(seconds: float | None) -> str:
    if seconds is None or seconds < 0:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s" if seconds >= 0.1 else f"{seconds * 1000:.0f}ms"
    m, s = divmod(int(seconds), 60)
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m"


def fmt_status(status: str) -> str:
    """A ``run_status`` value as shown: a killed run is a failed one."""
    return "failed (killed)" if status == "killed" else status


def _run_duration(row: Any, status: str) -> float | None:
    if row.finished_at is not None:
        return float(row.finished_at - row.created_at)
    if status == "running":
        return time.time() - row.created_at
    return None


# -- runs ------------------------------------------------------------------------------


@click.command()
@click.argument("flow", required=False)
@click.option("--all", "all_users", is_flag=True, help="Everyone's runs, not only yours (user:<you>).")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, help="Most runs to list.")
@_root_opt
def runs(flow: str | None, all_users: bool, limit: int, datastore_root: str | None) -> None:
    """List recent runs, newest first.

    A table of each run's flow, id, status, start, duration, user and tags.
    FLOW limits the list to one flow. A run whose process died without ending
    it (kill -9, crash) shows as "failed (killed)".
    """

    def go() -> None:
        from ..meta.liveness import run_status

        settings = _settings(datastore_root)
        tags: tuple[str, ...] = ()
        if not all_users:
            tags = (f"user:{settings.require_user()}",)
        with _source(settings.datastore_root) as src:
            flows = [flow] if flow else src.flows()
            rows = [r for f in flows for r in src.runs(f, tags=tags, limit=limit)]
            root = src.root
        rows.sort(key=lambda r: (r.created_at or 0.0, r.run_id), reverse=True)
        rows = rows[:limit]
        if not rows:
            who = "anyone" if all_users else tags[0]
            what = f"of {flow} " if flow else ""
            hint = "" if all_users else " (--all shows everyone's)"
            click.echo(f"No runs {what}by {who} in {root}{hint}.", err=True)
            return
        out = []
        for r in rows:
            status = run_status(r)
            out.append([r.flow, r.run_id, fmt_status(status), fmt_time(r.created_at),
                        fmt_duration(_run_duration(r, status)), r.user or "-", ", ".join(map(shown_tag, r.tags))])  # fmt: skip
        click.echo(table(["FLOW", "RUN ID", "STATUS", "STARTED", "DURATION", "USER", "TAGS"], out))

    guarded(go)


# -- show --------------------------------------------------------------------------------


@click.command()
@click.argument("pathspec")
@_root_opt
def show(pathspec: str, datastore_root: str | None) -> None:
    """Show one run: its status and its steps' tasks and timings.

    PATHSPEC is FLOW/RUN_ID.
    """

    def go() -> None:
        parts = pathspec.strip("/").split("/")
        if len(parts) != 2 or not all(parts):
            raise HeadwaterInvalidPathspec(f"show expects FLOW/RUN_ID, got {pathspec!r}.",
                                           hint="For example: headwater show HelloFlow/1763841234567890.")  # fmt: skip
        flow, run_id = parts
        settings = _settings(datastore_root)
        with _source(settings.datastore_root) as src:
            _show(src, flow, run_id)

    guarded(go)


def _show(src: Any, flow: str, run_id: str) -> None:
    from ..meta.liveness import run_status

    row = src.run(flow, run_id)
    if row is None:
        from ..client.base import runs_hint

        raise HeadwaterNotFound(f"Run '{flow}/{run_id}' does not exist.", hint=runs_hint(src, flow))
    status = run_status(row)
    click.echo(f"Run {flow}/{run_id}: {fmt_status(status)}")
    click.echo(f"    user: {row.user or '-'}    started: {fmt_time(row.created_at)}    "
               f"duration: {fmt_duration(_run_duration(row, status))}")  # fmt: skip
    click.echo(f"    tags: {', '.join(map(shown_tag, row.tags)) or '(none)'}")
    click.echo(f"    system tags: {', '.join(map(shown_tag, row.system_tags))}")
    if row.origin_run_id:
        click.echo(f"    resumed from: {flow}/{row.origin_run_id}")
    steps = src.steps(flow, run_id)
    if not steps:
        click.echo("\nNo step has started.")
        return
    click.echo("")
    click.echo(table(["STEP", "TASKS", "OK", "FAILED", "RUNNING", "STATUS", "STARTED", "DURATION"],
                     [_step_line(src, flow, run_id, s, dead=status == "killed") for s in steps]))  # fmt: skip


def _step_line(src: Any, flow: str, run_id: str, step: str, *, dead: bool) -> list[str]:
    ok = failed = running = 0
    starts: list[float] = []
    ends: list[float] = []
    for t in src.tasks(flow, run_id, step):
        if t.status == "running":
            t = src.task(flow, run_id, step, t.task_id) or t  # committed since it was indexed?
        if t.status == "ok":
            ok += 1
        elif t.status == "running" and not dead:
            running += 1
        else:
            failed += 1  # includes tasks of a killed run that never committed
        if t.started_at is not None:
            starts.append(t.started_at)
        if t.finished_at is not None:
            ends.append(t.finished_at)
    n = ok + failed + running
    status = "running" if running else ("failed" if failed else "ok")
    if not starts:
        duration = None
    elif running:
        duration = time.time() - min(starts)
    else:
        duration = (max(ends) - min(starts)) if ends else None
    return [step, str(n), str(ok), str(failed), str(running), status,
            fmt_time(min(starts) if starts else None), fmt_duration(duration)]  # fmt: skip


# -- reindex -----------------------------------------------------------------------------


@click.command()
@_root_opt
def reindex(datastore_root: str | None) -> None:
    """Rebuild the index from the store's records.

    The index is index.sqlite in the datastore root.

    Safe at any time: the records are the source of truth, the index a cache.
    Also removes temp files left by killed writers (never one a live writer uses).
    """

    def go() -> None:
        from ..meta import open_index
        from ..store import Datastore

        settings = _settings(datastore_root)
        with _source(settings.datastore_root) as src:
            root = src.root
        started = time.perf_counter()
        ds = Datastore(root)
        swept, freed = ds.sweep_temp(deep=True)
        from .progress import ProgressLine

        show = ProgressLine()
        with open_index(root, provider=settings.metadata) as idx:
            try:
                counts = idx.reindex(ds.records,
                                     on_progress=lambda done, total: show.update("reindex: reading runs", done, total))
            finally:
                show.close()
            if getattr(idx, "in_memory", False):  # the disk is full: nothing was written
                from ..store.full import StoreFullError

                raise StoreFullError(root, "the rebuilt index (index.sqlite)")
        took = time.perf_counter() - started
        skipped = f", {counts['skipped']} run directories without a run record skipped" if counts["skipped"] else ""
        click.echo(f"Reindexed {root}: {counts['runs']} runs, {counts['attempts']} task attempts{skipped} "
                   f"in {fmt_duration(took)}.")  # fmt: skip
        if swept:
            click.echo(f"Removed {swept} temp files ({freed / (1 << 20):.1f} MiB) left by writers that are gone.")
        if counts.get("damaged"):
            click.echo(f"{counts['damaged']} task attempt records are damaged (indexed as 'damaged'; their "
                       "tasks count as not done, so resume re-runs them).")

    guarded(go)
