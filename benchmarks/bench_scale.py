"""Scale benchmarks: per-task costs must stay flat as runs grow (headwater only).

Four parts, each selectable with ``--only``:

``scheduler``  the Scheduler alone, driven by InstantLauncher (tests/runtime/instant.py:
               a real Launcher that completes every task at the next poll), over a foreach
               of N items; µs per task.
``foreach``    real runs of ``python tests/flows/wide_foreach_flow.py run --n N`` (a foreach of
               N trivial tasks and a join over all of them); ms per task, files written per
               task, peak RSS of the largest process (the run process), and the join's own
               time over its N inputs.
``client``     the client listing R runs of one flow (R synthesized from a real run's records)
               and iterating the tasks of the largest foreach step run by ``foreach``.

    python benchmarks/bench_scale.py                                  # everything, full sizes
    python benchmarks/bench_scale.py --only scheduler --sizes 10000 100000 1000000
    python benchmarks/bench_scale.py --only foreach --sizes 1000 10000 --json /tmp/scale.json

Figures are printed as a table and, with ``--json``, written as one JSON document.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
FLOW = REPO / "tests" / "flows" / "wide_foreach_flow.py"
DEFAULT_SIZES = {"scheduler": [10_000, 100_000, 1_000_000], "foreach": [1_000, 10_000, 100_000]}
PARTS = ("scheduler", "foreach", "client")
#: Per-task figures may grow at most this much from the smallest size to the largest.
FLAT = 1.5


def _env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    src = str(REPO / "src")
    env.update({"HEADWATER_DATASTORE_ROOT": str(root), "HEADWATER_USER": "bench", "HEADWATER_LAUNCHER": "fork",
                "HEADWATER_HOME": str(root.parent / "home"),
                "PYTHONPATH": src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")})
    return env


# ---- scheduler ----------------------------------------------------------------------------
def bench_scheduler(sizes: list[int], tmp: Path, max_workers: int, per_poll: int) -> list[dict[str, Any]]:
    sys.path.insert(0, str(REPO / "tests"))
    sys.path.insert(0, str(REPO / "src"))
    from runtime.instant import instant_scheduler

    out = []
    for n in sizes:
        sched = instant_scheduler(tmp / f"sched-{n}" / ".headwater", n, max_workers=max_workers, per_poll=per_poll)
        t0 = time.perf_counter()
        try:
            outcome = sched.run()
        finally:
            sched.index.close()
        wall = time.perf_counter() - t0
        assert outcome.ok and outcome.num_tasks == n + 3, outcome
        row = {"tasks": outcome.num_tasks, "wall_s": round(wall, 3), "us_per_task": round(wall / outcome.num_tasks * 1e6, 2)}
        print(f"scheduler  n={n:>9,}  {row['us_per_task']:8.2f} µs/task  ({wall:.2f} s)", flush=True)
        out.append(row)
        shutil.rmtree(tmp / f"sched-{n}", ignore_errors=True)
    return out


# ---- real foreach runs --------------------------------------------------------------------
def _count_files(root: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(root))


def _join_seconds(root: Path) -> tuple[str, float | None]:
    sys.path.insert(0, str(REPO / "src"))
    from headwater.store import Datastore

    records = Datastore(str(root)).records
    run_id = records.runs("WideForeachFlow")[-1]
    tids = records.tasks("WideForeachFlow", run_id, "join")
    rec = records.latest_attempt("WideForeachFlow", run_id, "join", tids[0]) if tids else None
    return run_id, (rec["finished_at"] - rec["started_at"]) if rec else None


def bench_foreach(sizes: list[int], tmp: Path, max_workers: int, timeout: float) -> list[dict[str, Any]]:
    out = []
    for n in sizes:
        work = tmp / f"foreach-{n}"
        root = work / ".headwater"
        work.mkdir(parents=True, exist_ok=True)
        spec = {"cmd": [sys.executable, str(FLOW), "run", "--n", str(n), "--max-num-splits", str(n),
                        "--max-workers", str(max_workers)],
                "cwd": str(work), "env": _env(root), "stdout": str(work / "out.log"),
                "stderr": str(work / "err.log"), "timeout": timeout}
        p = subprocess.run([sys.executable, str(HERE / "_measure.py"), json.dumps(spec)], capture_output=True,
                           text=True, check=True)
        m = json.loads(p.stdout.strip().splitlines()[-1])
        tasks = n + 3
        row: dict[str, Any] = {"n": n, "tasks": tasks, "rc": m["rc"], "wall_s": round(m["wall_s"], 2),
                               "cpu_s": round(m["cpu_s"], 2), "peak_rss_mib": round(m["maxrss_kib"] / 1024, 1)}
        if m["rc"] == 0:
            files = _count_files(root)
            run_id, join_s = _join_seconds(root)
            row.update({"ms_per_task": round(m["wall_s"] / tasks * 1e3, 3), "files": files,
                        "files_per_task": round(files / tasks, 3), "join_s": round(join_s or 0.0, 3),
                        "root": str(root), "run_id": run_id})
            print(f"foreach    n={n:>9,}  {row['ms_per_task']:8.3f} ms/task  {row['files_per_task']:.2f} files/task  "
                  f"peak RSS {row['peak_rss_mib']} MiB  join over {n:,} inputs {row['join_s']} s  "
                  f"({m['wall_s']:.1f} s)", flush=True)
        else:
            print(f"foreach    n={n:>9,}  FAILED rc={m['rc']} (see {work})", flush=True)
        out.append(row)
    return out


# ---- client --------------------------------------------------------------------------------
def _synthesize_runs(root: Path, count: int) -> None:
    """``count`` finished runs of WideForeachFlow, copies of the run record already in ``root``."""
    from headwater.meta import open_index
    from headwater.store import Datastore

    ds = Datastore(str(root))
    base_id = ds.records.runs("WideForeachFlow")[-1]
    base = ds.records.read_run("WideForeachFlow", base_id)
    index = open_index(ds.root, records=ds.records)
    try:
        have = len(ds.records.runs("WideForeachFlow"))
        for i in range(count - have):
            rec = dict(base, run_id=str(int(base_id) - 1 - i))
            ds.records.write_run(rec)
            index.add_run(rec)
            index.end_run("WideForeachFlow", rec["run_id"], "successful", rec["created_at"] + 1)
    finally:
        index.close()


def bench_client(tmp: Path, runs: int, foreach_rows: list[dict[str, Any]]) -> dict[str, Any]:
    sys.path.insert(0, str(REPO / "src"))
    done = [r for r in foreach_rows if r.get("rc") == 0]
    if not done:  # the client part needs a real run to read: make a small one
        done = bench_foreach([100], tmp, 4, 600)
    big = max(done, key=lambda r: r["n"])
    root = tmp / "client-runs" / ".headwater"
    shutil.copytree(done[0]["root"], root)
    _synthesize_runs(root, runs)
    os.environ.update({"HEADWATER_DATASTORE_ROOT": str(root), "HEADWATER_USER": "bench"})
    from headwater import Flow, Run, namespace

    namespace(None)
    t0 = time.perf_counter()
    listed = list(Flow("WideForeachFlow"))
    list_s = time.perf_counter() - t0
    os.environ["HEADWATER_DATASTORE_ROOT"] = big["root"]
    t0 = time.perf_counter()
    tasks = list(Run(f"WideForeachFlow/{big['run_id']}")["body"])
    iter_s = time.perf_counter() - t0
    row = {"runs": len(listed), "list_runs_ms": round(list_s * 1e3, 1), "step_tasks": len(tasks),
           "iterate_step_s": round(iter_s, 3), "us_per_task": round(iter_s / max(1, len(tasks)) * 1e6, 2)}
    print(f"client     listing {len(listed):,} runs {row['list_runs_ms']} ms; iterating a {len(tasks):,}-task step "
          f"{row['iterate_step_s']} s ({row['us_per_task']} µs/task)", flush=True)
    return row


def _flatness(rows: list[dict[str, Any]], key: str) -> float | None:
    vals = [r[key] for r in rows if r.get(key)]
    return round(max(vals) / vals[0], 2) if len(vals) > 1 else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="+", choices=PARTS, default=list(PARTS))
    ap.add_argument("--sizes", nargs="+", type=int, help="sizes for scheduler and foreach (default: per part)")
    ap.add_argument("--runs", type=int, default=10_000, help="runs the client lists (default 10,000)")
    ap.add_argument("--max-workers", type=int, default=16)
    ap.add_argument("--per-poll", type=int, default=1, help="tasks InstantLauncher completes per poll (default 1)")
    ap.add_argument("--timeout", type=float, default=3600, help="per foreach run, seconds")
    ap.add_argument("--tmpdir", help="where working dirs go (default: a fresh temp dir, removed after)")
    ap.add_argument("--keep", action="store_true", help="keep the working dirs")
    ap.add_argument("--json", help="write the figures here as JSON")
    args = ap.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="hw-scale-", dir=args.tmpdir))
    report: dict[str, Any] = {"python": sys.version.split()[0], "cpus": os.cpu_count(), "max_workers": args.max_workers}
    try:
        if "scheduler" in args.only:
            rows = bench_scheduler(args.sizes or DEFAULT_SIZES["scheduler"], tmp, args.max_workers, args.per_poll)
            report["scheduler"] = {"rows": rows, "growth_us_per_task": _flatness(rows, "us_per_task")}
        foreach_rows: list[dict[str, Any]] = []
        if "foreach" in args.only:
            foreach_rows = bench_foreach(args.sizes or DEFAULT_SIZES["foreach"], tmp, args.max_workers, args.timeout)
            report["foreach"] = {"rows": foreach_rows, "growth_ms_per_task": _flatness(foreach_rows, "ms_per_task"),
                                 "growth_files_per_task": _flatness(foreach_rows, "files_per_task")}
        if "client" in args.only:
            report["client"] = bench_client(tmp, args.runs, foreach_rows)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    for part in ("scheduler", "foreach"):
        for key, growth in (report.get(part) or {}).items():
            if key.startswith("growth") and growth is not None:
                print(f"{part}: {key} = {growth}x ({'flat' if growth <= FLAT else 'NOT flat'} within {FLAT}x)")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
