"""Benchmark resume: a 1,000-task foreach whose join failed, resumed.

    .venv/bin/python benchmarks/bench_resume.py [--n 1000] [--repeat 3]

Runs the flow once (the join fails while a marker file exists), removes the
marker, then times `python flow.py resume` as a whole command and the clone
phase alone (from the resume banner to the re-executed join starting, read
from the console's timestamps). Target (issue 3): the 1,000 clones in < 2 s.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

FLOW = '''
import os
from headwater import FlowSpec, step


class BenchResumeFlow(FlowSpec):
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
        if os.path.exists(os.environ["BENCH_FAIL_MARKER"]):
            raise RuntimeError("join fails while the marker exists")
        self.total = sum(i.y for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        assert self.total == {total}


if __name__ == "__main__":
    BenchResumeFlow()
'''

_TS = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) ")


def _ts(line: str) -> float:
    m = _TS.match(line)
    assert m, line
    return datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f").timestamp()


def once(n: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="hwbench-resume-") as work:
        w = Path(work)
        (w / "flow.py").write_text(FLOW.format(n=n, total=n * (n - 1)))
        marker = w / "fail.marker"
        marker.touch()
        env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
        env.update(HEADWATER_DATASTORE_ROOT=str(w / ".headwater"), HEADWATER_USER="bench",
                   BENCH_FAIL_MARKER=str(marker))
        cmd = [sys.executable, str(w / "flow.py")]
        r = subprocess.run(cmd + ["run", "--max-num-splits", str(n + 1)], env=env, cwd=w,
                           capture_output=True, text=True)
        assert r.returncode == 1, r.stdout + r.stderr
        marker.unlink()
        t = time.perf_counter()
        r = subprocess.run(cmd + ["resume", "--max-num-splits", str(n + 1)], env=env, cwd=w,
                           capture_output=True, text=True)
        wall = time.perf_counter() - t
        assert r.returncode == 0, r.stdout + r.stderr
        lines = r.stdout.splitlines()
        begin = next(_ts(x) for x in lines if "Resuming run" in x)
        join = next(_ts(x) for x in lines if "/join/" in x and "Task is starting" in x)
        files = sum(len(f) for _, _, f in os.walk(w / ".headwater" / "blobs"))
        return {"wall": wall, "clone_phase": join - begin, "blobs_after": files}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print(f"resume of a {args.n}-task foreach whose join failed; {os.cpu_count()} CPUs")
    rows = []
    for i in range(args.repeat):
        res = once(args.n)
        rows.append(res)
        print(f"  #{i + 1}: resume command {res['wall']:.2f} s, clone phase {res['clone_phase']:.2f} s "
              f"({args.n + 2} tasks cloned: start, {args.n} work, and _parameters)")
    med = statistics.median(r["clone_phase"] for r in rows)
    medw = statistics.median(r["wall"] for r in rows)
    print(f"median: clone phase {med:.2f} s (target < 2 s), whole resume command {medw:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
