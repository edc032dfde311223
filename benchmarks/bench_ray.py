"""Benchmark the Ray launcher's per-task overhead against bare Ray tasks (the floor).

    PYTHONPATH=src .venv/bin/python benchmarks/bench_ray.py [--n 200] [--cpus 2] [--repeat 2]

Starts a two-node Ray cluster on loopback addresses (a head with no CPUs on
127.0.0.2, worker nodes on 127.0.0.3 and 127.0.0.4 with ``--cpus`` CPUs each; the
tests' helper, tests/raycluster.py), then, on that same cluster:

- floor: a driver submits ``n`` Ray tasks that do nothing (``num_cpus=1``, as
  headwater asks) and waits for all of them, twice: cold (the job's workers start,
  as they do for every headwater run, which is a new Ray job) and warm;
- headwater: ``python flow.py run`` of a foreach of ``n`` trivial tasks with
  ``HEADWATER_LAUNCHER=ray`` (local datastore shared by the nodes); timed from the
  split task finishing to the join starting, read from the console's timestamps,
  and the whole command.

Prints the per-task figures, the overhead headwater adds per task, and writes
benchmarks/results/ray.json.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from raycluster import start_cluster  # noqa: E402

FLOW = '''
from headwater import FlowSpec, step


class BenchRayFlow(FlowSpec):
    @step
    def start(self):
        self.items = list(range({n}))
        self.next(self.work, foreach="items")

    @step
    def work(self):
        self.y = self.input
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(i.y for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    BenchRayFlow()
'''

FLOOR = '''
import sys, time, ray
ray.init(address=sys.argv[1], logging_level="ERROR", log_to_driver=False)
n = int(sys.argv[2])

@ray.remote(num_cpus=1, max_retries=0)
def noop():
    return None

t = time.perf_counter()
ray.get([noop.remote() for _ in range(n)])  # cold: this job's workers start on every node
cold = time.perf_counter() - t
t = time.perf_counter()
ray.get([noop.remote() for _ in range(n)])
print(cold, time.perf_counter() - t)
'''

_TS = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) ")


def _ts(line: str) -> float:
    m = _TS.match(line)
    assert m, line
    return datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f").timestamp()


def floor(address: str, n: int, env: dict[str, str]) -> tuple[float, float]:
    """(cold, warm) seconds for ``n`` bare tasks: the first round starts the job's workers."""
    out = subprocess.run([sys.executable, "-c", FLOOR, address, str(n)], env=env, capture_output=True, text=True,
                         check=True, timeout=600).stdout
    cold, warm = out.strip().splitlines()[-1].split()
    return float(cold), float(warm)


def headwater_run(flow: Path, root: Path, address: str, env: dict[str, str]) -> tuple[float, float]:
    """(foreach phase seconds, whole command seconds) of one run."""
    run_env = {**env, "HEADWATER_LAUNCHER": "ray", "HEADWATER_RAY_ADDRESS": address,
               "HEADWATER_DATASTORE_ROOT": str(root), "HEADWATER_USER": "bench", "PYTHONPATH": str(HERE.parent / "src")}
    t = time.perf_counter()
    p = subprocess.run([sys.executable, str(flow), "run", "--max-num-splits", "100000"], env=run_env, capture_output=True, text=True, timeout=900)
    whole = time.perf_counter() - t
    if p.returncode != 0:
        raise SystemExit(f"the flow failed:\n{p.stdout}\n{p.stderr}")
    lines = (p.stdout + p.stderr).splitlines()
    split_done = next(_ts(x) for x in lines if "/start/" in x and "Task finished successfully" in x)
    join_start = next(_ts(x) for x in lines if "/join/" in x and "Task is starting" in x)
    return join_start - split_done, whole


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--cpus", type=int, default=2, help="CPUs of each of the two worker nodes")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-ray-") as tmp:
        work = Path(tmp)
        cluster = start_cluster(work / "cluster", head_cpus=0)
        try:
            cluster.add_node("127.0.0.3", args.cpus)
            cluster.add_node("127.0.0.4", args.cpus)
            flow = work / "bench_ray_flow.py"
            flow.write_text(FLOW.format(n=args.n))
            env = {k: v for k, v in cluster.env.items() if not k.startswith("HEADWATER_")}
            floors = [floor(cluster.address, args.n, env) for _ in range(args.repeat)]
            headwater_run(flow, work / "warm", cluster.address, env)  # workers warm, code cached on the nodes
            runs = [headwater_run(flow, work / f"store{i}", cluster.address, env) for i in range(args.repeat)]
        finally:
            cluster.stop()
    fl = statistics.median(f[1] for f in floors)
    cold = statistics.median(f[0] for f in floors)
    hw = statistics.median(r[0] for r in runs)
    whole = statistics.median(r[1] for r in runs)
    result = {
        "n": args.n, "cpus_per_node": args.cpus, "nodes": 2, "repeat": args.repeat,
        "bare_ray_s": round(fl, 3), "bare_ray_ms_per_task": round(1000 * fl / args.n, 2),
        "bare_ray_cold_s": round(cold, 3), "bare_ray_cold_ms_per_task": round(1000 * cold / args.n, 2),
        "headwater_foreach_s": round(hw, 3), "headwater_ms_per_task": round(1000 * hw / args.n, 2),
        "overhead_ms_per_task": round(1000 * (hw - fl) / args.n, 2), "ratio": round(hw / fl, 1),
        "headwater_whole_command_s": round(whole, 2),
    }
    print(json.dumps(result, indent=2))
    out = HERE / "results" / "ray.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
