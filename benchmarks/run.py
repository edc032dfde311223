#!/usr/bin/env python3
"""headwater vs Metaflow, side by side, with one command.

    python benchmarks/run.py [--only NAME ...] [--repeat N] [--no-metaflow]
                             [--no-headwater] [--json OUT] [--keep] [--tmpdir DIR]

Every workload is one tiny flow template rendered twice, once with
``from headwater import ...`` and once with ``from metaflow import ...``, so both
frameworks run identical step code. Each measured run gets a fresh temporary
working directory holding the flow file and that framework's datastore, and is
launched as ``python flow.py run ...`` by a fresh helper process
(``_measure.py``) that reports the command's wall time and peak RSS.

headwater runs with the interpreter running this script (the project venv);
Metaflow with ``benchmarks/.mfvenv/bin/python`` (a scratch venv, see README.md),
and is skipped with a note if that venv is absent. See README.md for the
workloads, what is measured and how to read the output.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
MEASURE = HERE / "_measure.py"
DEFAULT_MF_PYTHON = HERE / ".mfvenv" / "bin" / "python"

# Both frameworks get the same limits on every workload. 16 is Metaflow's own
# default --max-workers; with it Metaflow's foreach1000 takes minutes on a 2-core
# box, which is slow but bearable, so we keep it rather than tune it per machine.
MAX_WORKERS = 16
MAX_NUM_SPLITS = 2000

GIB = 2**30
ARRAY_BYTES = 2**27 * 8  # 2**27 float64 = exactly 1 GiB

HW, MF = "headwater", "metaflow"
FRAMEWORKS = (HW, MF)
STORE_DIR = {HW: ".headwater", MF: ".metaflow"}
# headwater's metadata index is a cache, one per datastore (not per task): it is
# excluded from files/task and reported in a footnote.
INDEX_SUFFIXES = (".sqlite", ".sqlite-wal", ".sqlite-shm", ".sqlite-journal", ".index.lock")


# --------------------------------------------------------------------------
# Flow templates: "__FW__" becomes "headwater" or "metaflow".
# --------------------------------------------------------------------------

def _hello() -> str:
    return textwrap.dedent(
        '''\
        from __FW__ import FlowSpec, step


        class BenchHelloFlow(FlowSpec):
            @step
            def start(self):
                self.x = 1
                self.next(self.middle)

            @step
            def middle(self):
                self.x += 1
                self.next(self.end)

            @step
            def end(self):
                assert self.x == 2


        if __name__ == "__main__":
            BenchHelloFlow()
        '''
    )


def _linear(n: int) -> str:
    names = ["start"] + [f"s{i:02d}" for i in range(1, n - 1)] + ["end"]
    body = []
    for cur, nxt in zip(names, names[1:]):
        first = "self.x = 0" if cur == "start" else "self.x += 1"
        body.append(
            f"    @step\n    def {cur}(self):\n        {first}\n        self.next(self.{nxt})\n"
        )
    body.append(f"    @step\n    def end(self):\n        assert self.x == {n - 2}\n")
    return (
        "from __FW__ import FlowSpec, step\n\n\n"
        f"class BenchLinear{n}Flow(FlowSpec):\n"
        + "\n".join(body)
        + f'\n\nif __name__ == "__main__":\n    BenchLinear{n}Flow()\n'
    )


def _branch(k: int) -> str:
    branches = [f"b{i}" for i in range(k)]
    parts = [
        "from __FW__ import FlowSpec, step\n\n\n",
        f"class BenchBranch{k}Flow(FlowSpec):\n",
        "    @step\n    def start(self):\n        self.base = 1\n"
        f"        self.next({', '.join('self.' + b for b in branches)})\n\n",
    ]
    for i, b in enumerate(branches):
        parts.append(
            f"    @step\n    def {b}(self):\n        self.v = self.base + {i}\n"
            "        self.next(self.join)\n\n"
        )
    parts.append(
        "    @step\n    def join(self, inputs):\n"
        "        self.total = sum(inp.v for inp in inputs)\n"
        "        self.next(self.end)\n\n"
        "    @step\n    def end(self):\n"
        f"        assert self.total == {sum(1 + i for i in range(k))}\n\n\n"
        f'if __name__ == "__main__":\n    BenchBranch{k}Flow()\n'
    )
    return "".join(parts)


def _foreach(n: int) -> str:
    return textwrap.dedent(
        f'''\
        from __FW__ import FlowSpec, step


        class BenchForeach{n}Flow(FlowSpec):
            @step
            def start(self):
                self.items = list(range({n}))
                self.next(self.work, foreach="items")

            @step
            def work(self):
                self.y = self.input * 2
                self.next(self.join)

            @step
            def join(self, inputs):
                ys = [inp.y for inp in inputs]
                assert ys == [2 * i for i in range({n})], "join inputs not in index order"
                self.total = sum(ys)
                self.next(self.end)

            @step
            def end(self):
                assert self.total == {n * (n - 1)}


        if __name__ == "__main__":
            BenchForeach{n}Flow()
        '''
    )


def _array(control: bool) -> str:
    if control:
        start = (
            "        arr = np.random.default_rng(0).random(2**27)\n"
            "        self.n = int(arr.size)\n"
            "        del arr  # same work as array1g, but no 1 GiB artifact\n"
        )
        consume = "        self.total = 0.0\n"
    else:
        start = (
            "        self.arr = np.random.default_rng(0).random(2**27)\n"
            "        self.n = int(self.arr.size)\n"
        )
        consume = "        self.total = float(self.arr.sum())  # load + one full pass\n"
    name = "BenchArray1gControlFlow" if control else "BenchArray1gFlow"
    return (
        "import numpy as np\n\nfrom __FW__ import FlowSpec, step\n\n\n"
        f"class {name}(FlowSpec):\n"
        "    @step\n    def start(self):\n" + start + "        self.next(self.consume)\n\n"
        "    @step\n    def consume(self):\n" + consume + "        self.next(self.end)\n\n"
        "    @step\n    def end(self):\n        assert self.n == 2**27\n\n\n"
        f'if __name__ == "__main__":\n    {name}()\n'
    )


@dataclass(frozen=True)
class Workload:
    name: str
    tasks: int  # user tasks (the _parameters pseudo-task is not counted)
    big: bool  # default repeat 1 instead of 3
    source: Callable[[], str]
    what: str
    hidden: bool = False  # run only as part of another workload (array1g-control)


WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in [
        Workload("hello", 3, False, _hello, "3-step linear flow"),
        Workload("linear20", 20, False, lambda: _linear(20), "20-step linear flow"),
        Workload("branch10", 13, False, lambda: _branch(10), "10-way static branch + join"),
        Workload("foreach100", 103, False, lambda: _foreach(100), "foreach over 100 trivial tasks + join"),
        Workload("foreach1000", 1003, True, lambda: _foreach(1000), "foreach over 1,000 trivial tasks + join"),
        Workload("array1g", 3, True, lambda: _array(False), "1 GiB float64 artifact written in start, summed in the next step"),
        Workload("array1g-control", 3, True, lambda: _array(True), "array1g without the artifact (same array built and deleted)", hidden=True),
    ]
}
PUBLIC = [w for w in WORKLOADS if not WORKLOADS[w].hidden]


# --------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------

@dataclass
class RunResult:
    workload: str
    framework: str
    repeat: int
    rc: int | None
    wall_s: float
    maxrss_mib: float
    cpu_s: float
    files: int  # under the datastore dir, index files excluded
    index_files: int  # headwater's index.sqlite (+ -wal/-shm), not in `files`
    other_files: int  # files in the work dir outside the datastore (besides ours)
    files_per_task: float
    error: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.rc == 0


def _clean_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("METAFLOW_", "HEADWATER_")) and k not in ("PYTHONPATH", "VIRTUAL_ENV")
    }
    env["USER"] = env["USERNAME"] = "bench"
    return env


def _env_for(fw: str, work: Path) -> dict[str, str]:
    env = _clean_env()
    if fw == HW:
        env.update(
            HEADWATER_DATASTORE_ROOT=str(work / STORE_DIR[HW]),
            HEADWATER_HOME=str(work / "home"),
            HEADWATER_USER="bench",
        )
    else:
        env.update(
            METAFLOW_HOME=str(work / "home"),
            METAFLOW_DATASTORE_SYSROOT_LOCAL=str(work),  # -> <work>/.metaflow
            METAFLOW_DEFAULT_DATASTORE="local",
            METAFLOW_DEFAULT_METADATA="local",
            METAFLOW_USER="bench",
        )
    return env


def _command(fw: str, python: str, flow: Path) -> list[str]:
    cmd = [python, str(flow)]
    if fw == MF:
        cmd.append("--no-pylint")
    cmd += ["run", "--max-workers", str(MAX_WORKERS), "--max-num-splits", str(MAX_NUM_SPLITS)]
    return cmd


def _count_files(work: Path, fw: str) -> tuple[int, int, int]:
    store = work / STORE_DIR[fw]
    files = index = 0
    for root, _dirs, names in os.walk(store):
        for n in names:
            if fw == HW and n.endswith(INDEX_SUFFIXES):
                index += 1
            else:
                files += 1
    ours = {"flow.py", "run.stdout", "run.stderr"}
    other = 0
    for root, dirs, names in os.walk(work):
        if Path(root) == work:
            dirs[:] = [d for d in dirs if d != STORE_DIR[fw]]
            other += sum(1 for n in names if n not in ours)
        else:
            other += len(names)
    return files, index, other


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def run_once(wl: Workload, fw: str, python: str, rep: int, args) -> RunResult:
    work = Path(tempfile.mkdtemp(prefix=f"hwbench-{wl.name}-{fw}-", dir=args.tmpdir))
    flow = work / "flow.py"
    flow.write_text(wl.source().replace("__FW__", fw))
    spec = {
        "cmd": _command(fw, python, flow),
        "cwd": str(work),
        "env": _env_for(fw, work),
        "stdout": str(work / "run.stdout"),
        "stderr": str(work / "run.stderr"),
        "timeout": args.timeout,
    }
    helper = subprocess.run(
        [sys.executable, str(MEASURE), json.dumps(spec)], capture_output=True, text=True
    )
    if helper.returncode != 0:
        raise RuntimeError(f"measurement helper failed:\n{helper.stderr}")
    m = json.loads(helper.stdout)
    files, index, other = _count_files(work, fw)
    err = None
    if m["rc"] != 0:
        what = "timed out" if m["timed_out"] else f"exit status {m['rc']}"
        err = f"{what}; last lines of stderr:\n{_tail(work / 'run.stderr')}"
    res = RunResult(
        workload=wl.name,
        framework=fw,
        repeat=rep,
        rc=m["rc"],
        wall_s=m["wall_s"],
        maxrss_mib=m["maxrss_kib"] / 1024,
        cpu_s=m["cpu_s"],
        files=files,
        index_files=index,
        other_files=other,
        files_per_task=files / wl.tasks,
        error=err,
        extra={"orphans_reaped": m["orphans_reaped"], "user_s": m["user_s"], "sys_s": m["sys_s"], "workdir": str(work)},
    )
    if args.keep or (err and args.keep_failed):
        res.extra["kept"] = True
    else:
        shutil.rmtree(work, ignore_errors=True)
    return res


# --------------------------------------------------------------------------
# Summaries
# --------------------------------------------------------------------------

@dataclass
class Summary:
    wall_s: float | None = None  # median over successful repeats
    maxrss_mib: float | None = None  # max over successful repeats
    cpu_s: float | None = None  # median
    files_per_task: float | None = None  # last successful repeat
    files: int | None = None  # last successful repeat, index files excluded
    index_files: int | None = None
    runs: int = 0
    failed: int = 0


def summarize(results: list[RunResult], wl: str, fw: str) -> Summary:
    rs = [r for r in results if r.workload == wl and r.framework == fw]
    ok = [r for r in rs if r.ok]
    s = Summary(runs=len(rs), failed=len(rs) - len(ok))
    if ok:
        s.wall_s = statistics.median(r.wall_s for r in ok)
        s.maxrss_mib = max(r.maxrss_mib for r in ok)
        s.cpu_s = statistics.median(r.cpu_s for r in ok)
        s.files_per_task = ok[-1].files_per_task
        s.files = ok[-1].files
        s.index_files = ok[-1].index_files
    return s


def _ratio(mf: float | None, hw: float | None) -> float | None:
    if mf is None or hw is None or hw <= 0:
        return None
    return mf / hw


def _f(x: float | None, fmt: str, failed: int = 0) -> str:
    if x is None:
        return "failed" if failed else "—"
    return format(x, fmt)


def _x(r: float | None) -> str:
    return "—" if r is None else f"{r:.1f}x"


def array_figures(summ: dict) -> dict[str, dict[str, float | None]]:
    """Round trip, GB/s and peak RSS / 1 GiB for array1g, per framework."""
    out: dict[str, dict[str, float | None]] = {}
    for fw in FRAMEWORKS:
        w = summ.get(("array1g", fw))
        c = summ.get(("array1g-control", fw))
        if not w or w.wall_s is None:
            continue
        rt = None
        if c and c.wall_s is not None:
            rt = w.wall_s - c.wall_s
        out[fw] = {
            "round_trip_s": rt,
            "gb_per_s": (ARRAY_BYTES / 1e9 / rt) if rt and rt > 0 else None,
            "peak_rss_over_gib": (w.maxrss_mib * 2**20 / GIB) if w.maxrss_mib else None,
            "control_peak_rss_over_gib": (c.maxrss_mib * 2**20 / GIB) if c and c.maxrss_mib else None,
        }
    return out


def markdown(summ: dict, workloads: list[str], fws: list[str], machine: dict) -> str:
    L: list[str] = []
    L.append(
        f"Measured {machine['date']} on {machine['nproc']} CPUs ({machine['cpu']}), "
        f"{machine['mem_gib']:.0f} GiB RAM, Python {machine['python']}; "
        f"Metaflow {machine.get('metaflow_version') or 'n/a'}, headwater {machine.get('headwater_version') or 'n/a'}; "
        f"--max-workers {MAX_WORKERS} for both.\n"
    )
    L.append(
        "| workload | tasks | Metaflow wall (s) | headwater wall (s) | speed-up (MF/hw) "
        "| Metaflow peak RSS (MiB) | headwater peak RSS (MiB) "
        "| Metaflow files/task | headwater files/task |"
    )
    L.append("|---|--:|--:|--:|--:|--:|--:|--:|--:|")
    rows = []
    for w in workloads:
        rows.append(w)
        if w == "array1g":
            rows.append("array1g-control")
    for w in rows:
        mf = summ.get((w, MF), Summary())
        hw = summ.get((w, HW), Summary())
        L.append(
            f"| {w} | {WORKLOADS[w].tasks} "
            f"| {_f(mf.wall_s, '.2f', mf.failed)} | {_f(hw.wall_s, '.3f', hw.failed)} "
            f"| {_x(_ratio(mf.wall_s, hw.wall_s))} "
            f"| {_f(mf.maxrss_mib, '.0f', mf.failed)} | {_f(hw.maxrss_mib, '.0f', hw.failed)} "
            f"| {_f(mf.files_per_task, '.1f', mf.failed)} | {_f(hw.files_per_task, '.2f', hw.failed)} |"
        )
    notes = [
        "wall = whole `python flow.py run` command, median of the repeats; "
        "peak RSS = `ru_maxrss` of RUSAGE_CHILDREN, i.e. the largest single process of the run's tree "
        "(not a sum over processes), max over repeats; files/task = files under the datastore dir after "
        "one run ÷ user tasks (the `_parameters` pseudo-task is not counted as a task)."
    ]
    idx = {summ[(w, HW)].index_files for w in rows if (w, HW) in summ and summ[(w, HW)].index_files is not None}
    if idx:
        notes.append(
            "headwater's files/task excludes its metadata index (`index.sqlite`, its -wal/-shm files and `.index.lock`): "
            f"{', '.join(str(i) for i in sorted(idx))} file(s) per datastore, not per task."
        )
    L.append("")
    L += [f"{i + 1}. {n}" for i, n in enumerate(notes)]

    if "array1g" in workloads:
        af = array_figures(summ)
        if af:
            L.append("")
            L.append("1 GiB artifact (`array1g` − `array1g-control`: write in `start` + load and one `sum()` pass in the next step):\n")
            L.append("| | Metaflow | headwater | MF/hw |")
            L.append("|---|--:|--:|--:|")
            g = lambda fw, k: af.get(fw, {}).get(k)  # noqa: E731
            L.append(
                f"| artifact round trip (s) | {_f(g(MF, 'round_trip_s'), '.2f')} | {_f(g(HW, 'round_trip_s'), '.3f')} "
                f"| {_x(_ratio(g(MF, 'round_trip_s'), g(HW, 'round_trip_s')))} |"
            )
            L.append(
                f"| throughput (GB/s, 1 GiB ÷ round trip) | {_f(g(MF, 'gb_per_s'), '.3f')} | {_f(g(HW, 'gb_per_s'), '.2f')} "
                f"| {_x(_ratio(g(HW, 'gb_per_s'), g(MF, 'gb_per_s')))} (hw/MF) |"
            )
            L.append(
                f"| peak RSS ÷ 1 GiB | {_f(g(MF, 'peak_rss_over_gib'), '.2f')} | {_f(g(HW, 'peak_rss_over_gib'), '.2f')} "
                f"| {_x(_ratio(g(MF, 'peak_rss_over_gib'), g(HW, 'peak_rss_over_gib')))} |"
            )
            L.append(
                f"| peak RSS ÷ 1 GiB, control (array only) | {_f(g(MF, 'control_peak_rss_over_gib'), '.2f')} "
                f"| {_f(g(HW, 'control_peak_rss_over_gib'), '.2f')} | |"
            )

    # DESIGN.md §5 budgets.
    L.append("")
    L.append("Budgets (`shared/DESIGN.md` §5):\n")
    L.append("| budget | Metaflow | headwater | headwater target | met |")
    L.append("|---|--:|--:|--:|:-:|")

    def budget(label, mfv, hwv, target, ok, fmt):
        met = "—" if hwv is None else ("yes" if ok(hwv) else "**no**")
        L.append(f"| {label} | {_f(mfv, fmt)} | {_f(hwv, fmt)} | {target} | {met} |")

    fe = "foreach1000" if ("foreach1000", MF) in summ or ("foreach1000", HW) in summ else (
        "foreach100" if ("foreach100", MF) in summ or ("foreach100", HW) in summ else None)
    if fe:
        n = WORKLOADS[fe].tasks - 3
        per = lambda fw: None if summ.get((fe, fw)) is None or summ[(fe, fw)].wall_s is None else summ[(fe, fw)].wall_s / n * 1e3  # noqa: E731
        budget(f"per-task overhead, ms ({fe} wall ÷ {n})", per(MF), per(HW), "≤ 10 ms", lambda v: v <= 10, ".1f")
        def fpt(fw):
            # Marginal files per task, (files(foreach1000) - files(foreach100)) / 900,
            # when both ran: per-run files (run records, _parameters, start/join/end)
            # cancel out. Otherwise the plain average over the tasks of `fe`.
            big, small = summ.get(("foreach1000", fw)), summ.get(("foreach100", fw))
            if big and small and big.files is not None and small.files is not None:
                return (big.files - small.files) / 900
            s = summ.get((fe, fw))
            return s.files_per_task if s else None

        both = all(("foreach1000", fw) in summ and ("foreach100", fw) in summ for fw in fws)
        label = "files per trivial task (foreach1000 − foreach100) ÷ 900" if both else f"files per trivial task ({fe}, average)"
        budget(label, fpt(MF), fpt(HW), "≤ 3", lambda v: round(v, 2) <= 3, ".2f")  # as displayed: a per-run blob (the 1000-item list) adds 1/900
    if ("hello", MF) in summ or ("hello", HW) in summ:
        h = lambda fw: summ[("hello", fw)].wall_s if ("hello", fw) in summ else None  # noqa: E731
        budget("3-step hello, whole command (s)", h(MF), h(HW), "≤ 0.35 s", lambda v: v <= 0.35, ".2f")
    if "array1g" in workloads:
        af = array_figures(summ)
        g = lambda fw, k: af.get(fw, {}).get(k)  # noqa: E731
        budget("1 GiB artifact save + load (GB/s)", g(MF, "gb_per_s"), g(HW, "gb_per_s"), "≥ 0.8 GB/s", lambda v: v >= 0.8, ".3f")
        budget("1 GiB artifact, peak RSS ÷ array size", g(MF, "peak_rss_over_gib"), g(HW, "peak_rss_over_gib"), "≤ 1.15", lambda v: v <= 1.15, ".2f")
    return "\n".join(L)


# --------------------------------------------------------------------------
# Machine description
# --------------------------------------------------------------------------

def _version_in(python: str, dist: str) -> str | None:
    try:
        out = subprocess.run(
            [python, "-c", f"import importlib.metadata as m; print(m.version({dist!r}))"],
            capture_output=True, text=True, timeout=60,
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def machine_info(mf_python: str | None) -> dict:
    cpu = platform.processor() or platform.machine()
    mem = 0.0
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) / 2**20
    except OSError:
        pass
    info = {
        "date": _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "mem_gib": mem,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "headwater_python": sys.executable,
        "headwater_version": _version_in(sys.executable, "headwater"),
        "metaflow_python": mf_python,
        "metaflow_version": _version_in(mf_python, "metaflow") if mf_python else None,
        "max_workers": MAX_WORKERS,
        "max_num_splits": MAX_NUM_SPLITS,
    }
    try:
        info["loadavg_start"] = os.getloadavg()
    except OSError:
        pass
    return info


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description="Benchmark headwater against Metaflow on identical flows.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="workloads: " + ", ".join(f"{w} ({WORKLOADS[w].what})" for w in PUBLIC),
    )
    ap.add_argument("--only", nargs="+", metavar="NAME", choices=PUBLIC, help="run only these workloads")
    ap.add_argument("--repeat", type=int, help="repeats per workload (default: 3; 1 for foreach1000 and array1g)")
    ap.add_argument("--no-metaflow", action="store_true", help="skip Metaflow")
    ap.add_argument("--no-headwater", action="store_true", help="skip headwater (e.g. to record a Metaflow baseline)")
    ap.add_argument("--json", metavar="OUT", help="also write every run and the summary as JSON")
    ap.add_argument("--metaflow-python", default=str(DEFAULT_MF_PYTHON), help="interpreter of the Metaflow venv")
    ap.add_argument("--headwater-python", default=sys.executable, help="interpreter for headwater (default: this one)")
    ap.add_argument("--tmpdir", default=None, help="where the per-run working dirs go (default: system temp dir)")
    ap.add_argument("--timeout", type=float, default=3600, help="per-run limit in seconds (default 3600)")
    ap.add_argument("--no-warmup", action="store_true", help="skip the unmeasured hello run per framework")
    ap.add_argument("--keep", action="store_true", help="keep every run's working dir")
    ap.add_argument("--keep-failed", action="store_true", help="keep the working dir of failed runs")
    args = ap.parse_args(argv)

    fws: list[str] = []
    if not args.no_headwater:
        fws.append(HW)
    mf_python: str | None = None
    if not args.no_metaflow:
        if Path(args.metaflow_python).exists():
            mf_python = args.metaflow_python
            fws.append(MF)
        else:
            print(
                f"note: Metaflow venv not found at {args.metaflow_python}; skipping Metaflow.\n"
                "      create it with: python3 -m venv benchmarks/.mfvenv && "
                "benchmarks/.mfvenv/bin/pip install 'metaflow==2.19.*' numpy\n"
            )
    if not fws:
        print("nothing to run (both frameworks skipped)")
        return 2
    pythons = {HW: args.headwater_python, MF: mf_python}
    if args.tmpdir:
        os.makedirs(args.tmpdir, exist_ok=True)

    workloads = args.only or PUBLIC
    workloads = [w for w in PUBLIC if w in workloads]  # canonical order
    machine = machine_info(mf_python)
    print(
        f"# headwater benchmarks — {machine['date']}, {machine['nproc']} CPUs, Python {machine['python']}, "
        f"frameworks: {', '.join(fws)}, --max-workers {MAX_WORKERS}"
    )

    if not args.no_warmup:
        for fw in fws:
            r = run_once(WORKLOADS["hello"], fw, pythons[fw], 0, args)
            status = "ok" if r.ok else "FAILED"
            print(f"  warm-up  {fw:<9} hello {r.wall_s:7.2f} s  {status}")
            if r.error:
                print(textwrap.indent(r.error, "      "))

    results: list[RunResult] = []
    for w in workloads:
        wl = WORKLOADS[w]
        reps = args.repeat or (1 if wl.big else 3)
        names = [w, "array1g-control"] if w == "array1g" else [w]
        print(f"\n## {w}: {wl.what} ({wl.tasks} tasks), {reps} repeat(s)")
        for rep in range(reps):
            for fw in fws:  # interleaved, so drift in machine load hits both alike
                for name in names:
                    r = run_once(WORKLOADS[name], fw, pythons[fw], rep, args)
                    results.append(r)
                    status = "ok" if r.ok else "FAILED"
                    print(
                        f"  {name:<16} {fw:<9} #{rep + 1}  wall {r.wall_s:8.3f} s  "
                        f"peak RSS {r.maxrss_mib:7.0f} MiB  cpu {r.cpu_s:7.2f} s (sys {r.extra['sys_s']:.2f})  "
                        f"files {r.files:6d} ({r.files_per_task:.2f}/task"
                        + (f", +{r.index_files} index" if r.index_files else "")
                        + (f", +{r.other_files} outside store" if r.other_files else "")
                        + f")  {status}"
                    )
                    if r.error:
                        print(textwrap.indent(r.error, "      "))
                    if r.extra.get("kept"):
                        print(f"      (kept {r.extra['workdir']})")

    summ: dict[tuple[str, str], Summary] = {}
    for r in results:
        summ.setdefault((r.workload, r.framework), None)
    for key in list(summ):
        summ[key] = summarize(results, *key)

    try:
        machine["loadavg_end"] = os.getloadavg()
    except OSError:
        pass
    md = markdown(summ, workloads, fws, machine)
    print("\n" + md)

    if args.json:
        out = {
            "machine": machine,
            "runs": [r.__dict__ | {"ok": r.ok} for r in results],
            "summary": {
                f"{w}/{fw}": s.__dict__ for (w, fw), s in summ.items()
            },
            "array1g": array_figures(summ),
            "markdown": md,
        }
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=2, default=str))
        print(f"\nwrote {args.json}")
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
