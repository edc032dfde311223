"""Benchmark the Runner's overhead: `python hello.py run` vs `Runner("hello.py").run()`.

    .venv/bin/python benchmarks/bench_runner.py [--repeat 5]

Both run examples/hello.py on a local store (a fresh temp root each), output
captured and not shown. The two are interleaved after one warm-up each; the
figure is the difference of the medians. A third series passes a run option,
so its arguments are checked in-process (click parse) first. The Runner's first call in a process
(importing the flow module and the runner) is reported apart. Target: the
Runner adds < 0.15 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HELLO = Path(__file__).resolve().parents[1] / "examples" / "hello.py"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="hw-bench-runner-"))
    cli_root, runner_root = tmp / "cli" / ".headwater", tmp / "runner" / ".headwater"
    cli_env = {**os.environ, "HEADWATER_DATASTORE_ROOT": str(cli_root)}

    def cli() -> float:
        t = time.perf_counter()
        p = subprocess.run([sys.executable, str(HELLO), "run"], env=cli_env, cwd=tmp, capture_output=True)
        dt = time.perf_counter() - t
        assert p.returncode == 0, p.stderr.decode()
        return dt

    t0 = time.perf_counter()
    from headwater import Runner

    def runner(**kwargs: object) -> float:
        t = time.perf_counter()
        with Runner(HELLO, show_output=False, cwd=tmp, datastore_root=str(runner_root)) as r:
            result = r.run(**kwargs)
        dt = time.perf_counter() - t
        assert result.status == "successful", result.stderr
        return dt

    runner()
    first = time.perf_counter() - t0  # includes `from headwater import Runner`
    cli()  # warm-up (page cache, pyc)
    cli_times, runner_times, checked_times = [], [], []
    for _ in range(args.repeat):
        cli_times.append(cli())
        runner_times.append(runner())
        checked_times.append(runner(tags=["bench"]))  # arguments are checked with the flow's click command

    med_cli, med_runner = statistics.median(cli_times), statistics.median(runner_times)
    print(f"examples/hello.py, median of {args.repeat} (local store, output captured)")
    print(f"  python hello.py run        {med_cli:.3f} s   ({', '.join(f'{t:.3f}' for t in cli_times)})")
    print(f"  Runner('hello.py').run()   {med_runner:.3f} s   ({', '.join(f'{t:.3f}' for t in runner_times)})")
    print(f"  Runner overhead            {med_runner - med_cli:+.3f} s   (target < 0.150 s)")
    med_checked = statistics.median(checked_times)
    print(f"  .run(tags=['bench'])       {med_checked:.3f} s   (overhead {med_checked - med_cli:+.3f} s, "
          "argument check included)")
    print(f"  first Runner call in a fresh process (imports included): {first:.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
