#!/usr/bin/env python3
"""headwater vs Metaflow on an S3 datastore, side by side against one S3 server.

    python benchmarks/bench_s3_datastore.py [--repeat N] [--no-metaflow] [--json OUT]

Starts one moto S3 server on 127.0.0.1 (the tests' helper, ``tests/s3server.py``),
then runs the 3-step hello flow and a foreach over 100 trivial tasks (the templates
of ``benchmarks/run.py``, rendered for each framework) with the datastore in a fresh
bucket: headwater with ``HEADWATER_DATASTORE_ROOT=s3://...``, Metaflow with
``--datastore=s3`` (its scratch venv, ``benchmarks/.mfvenv`` or ``--mf-python``).

Reported per run: the whole command's wall time (``_measure.py``) and the S3 requests
it made, counted by the server itself (moto's request recorder), in total, by HTTP
method and per task. The numbers are for this machine and this server: moto is slow
per request (a Python server), so requests per task is the figure that carries over
to real S3.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from run import DEFAULT_MF_PYTHON, MEASURE, _clean_env, _foreach, _hello  # noqa: E402
from s3server import S3Server, start_s3_server  # noqa: E402

WORKLOADS = {"hello": (_hello, 3), "foreach100": (lambda: _foreach(100), 103)}


def _recorder(server: S3Server, action: str) -> bytes:
    method = "GET" if action == "download-recording" else "POST"
    req = urllib.request.Request(f"{server.url}/moto-api/recorder/{action}", method=method)
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.read()


def _count_requests(server: S3Server) -> collections.Counter:
    counts: collections.Counter = collections.Counter()
    for line in _recorder(server, "download-recording").splitlines():
        if line.strip():
            counts[json.loads(line).get("method", "?")] += 1
    return counts


def run_once(fw: str, python: str, workload: str, server: S3Server, tmp: str) -> dict:
    source, tasks = WORKLOADS[workload]
    work = Path(tempfile.mkdtemp(prefix=f"s3bench-{workload}-{fw}-", dir=tmp))
    flow = work / "flow.py"
    flow.write_text(source().replace("__FW__", fw))
    bucket = server.new_bucket(fw[:2])
    env = {**_clean_env(), **server.env()}
    cmd = [python, str(flow)]
    if fw == "headwater":
        env.update(HEADWATER_DATASTORE_ROOT=f"s3://{bucket}/hw", HEADWATER_HOME=str(work / "home"),
                   HEADWATER_USER="bench")
    else:
        env.update(METAFLOW_HOME=str(work / "home"), METAFLOW_DATASTORE_SYSROOT_S3=f"s3://{bucket}/mf",
                   METAFLOW_S3_ENDPOINT_URL=server.url, METAFLOW_DEFAULT_METADATA="local", METAFLOW_USER="bench",
                   METAFLOW_DATASTORE_SYSROOT_LOCAL=str(work))
        cmd += ["--no-pylint", "--datastore=s3"]
    cmd += ["run", "--max-workers", "16", "--max-num-splits", "2000"]
    _recorder(server, "reset-recording")
    _recorder(server, "start-recording")
    spec = {"cmd": cmd, "cwd": str(work), "env": env, "stdout": str(work / "run.stdout"),
            "stderr": str(work / "run.stderr"), "timeout": 1800}
    helper = subprocess.run([sys.executable, str(MEASURE), json.dumps(spec)], capture_output=True, text=True)
    _recorder(server, "stop-recording")
    m = json.loads(helper.stdout)
    if m["rc"] != 0:
        raise SystemExit(f"{fw} {workload} failed:\n{(work / 'run.stderr').read_text()[-3000:]}")
    counts = _count_requests(server)
    total = sum(counts.values())
    return {"framework": fw, "workload": workload, "tasks": tasks, "wall_s": m["wall_s"], "cpu_s": m["cpu_s"],
            "requests": total, "by_method": dict(counts), "requests_per_task": total / tasks}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--mf-python", default=os.environ.get("HEADWATER_BENCH_MF_PYTHON", str(DEFAULT_MF_PYTHON)))
    ap.add_argument("--no-metaflow", action="store_true")
    ap.add_argument("--json", default=str(HERE / "results" / "s3_datastore.json"))
    args = ap.parse_args()
    fws = {"headwater": sys.executable}
    if not args.no_metaflow:
        if Path(args.mf_python).exists():
            fws["metaflow"] = args.mf_python
        else:
            print(f"note: no Metaflow venv at {args.mf_python}; headwater only", file=sys.stderr)
    recording = tempfile.NamedTemporaryFile(prefix="moto-recording-", delete=False)
    recording.close()
    os.environ["MOTO_RECORDER_FILEPATH"] = recording.name  # not ./moto_recording in the working directory
    server = start_s3_server()
    results = []
    try:
        with tempfile.TemporaryDirectory(prefix="s3bench-") as tmp:
            for workload in WORKLOADS:
                for fw, python in fws.items():
                    runs = [run_once(fw, python, workload, server, tmp) for _ in range(args.repeat)]
                    best = sorted(runs, key=lambda r: r["wall_s"])[len(runs) // 2]
                    best["wall_s_all"] = [round(r["wall_s"], 3) for r in runs]
                    best["wall_s"] = statistics.median(r["wall_s"] for r in runs)
                    results.append(best)
                    print(f"{workload:<11} {fw:<10} wall {best['wall_s']:7.2f} s  requests {best['requests']:6d} "
                          f"({best['requests_per_task']:.1f}/task)  {best['by_method']}", flush=True)
    finally:
        server.stop()
        os.unlink(recording.name)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"server": "moto[server] on 127.0.0.1", "results": results}, indent=2))
    print("\n| workload | framework | wall s (median) | S3 requests | per task |\n|---|---|---|---|---|")
    for r in results:
        print(f"| {r['workload']} | {r['framework']} | {r['wall_s']:.2f} | {r['requests']} | "
              f"{r['requests_per_task']:.1f} |")


if __name__ == "__main__":
    main()
