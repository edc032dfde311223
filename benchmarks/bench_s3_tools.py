"""Benchmark the S3 data tools: put_many then get_many of N objects against one moto server,
``headwater.S3`` vs Metaflow's ``metaflow.S3`` vs plain boto3 (16 threads).

    PYTHONPATH=src .venv/bin/python benchmarks/bench_s3_tools.py [--count 100] [--size-mib 10] [--repeat 3]
        [--metaflow-python PATH] [--json benchmarks/results/s3_tools.json]

Each operation runs in a fresh worker process (``--worker``) that times only the call:
wall time, and client CPU = the worker's own user+sys plus that of its reaped children
(Metaflow's s3op subprocess workers) over the call. Every engine and repeat gets a fresh
bucket on the same server; objects are deleted after each repeat so the server's memory
stays flat. Medians over the repeats are printed as a table and written as JSON.
Metaflow is run with ``--metaflow-python`` (default: the compat scratch venv, else
/work/mfvenv, else benchmarks/.mfvenv) and skipped with a note if none has Metaflow.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))
ENGINES = ("headwater", "metaflow", "boto3")
OPS = ("put_many", "get_many")
BOTO3_THREADS = 16


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


# --- the worker: one operation, timed from inside -----------------------------------------------

def _keys(count: int) -> list[str]:
    return [f"bench/{i:05d}" for i in range(count)]


def _worker(engine: str, op: str, root: str, count: int, size: int, tmp: str) -> dict:
    payload = os.urandom(size)  # one buffer shared by every key: memory stays at one object's size
    keys = _keys(count)
    if engine == "boto3":
        run = _boto3_op(op, root, keys, payload, tmp)
    else:
        if engine == "metaflow":
            from metaflow import S3
        else:
            from headwater import S3

        def run() -> int:
            with S3(s3root=root, tmproot=tmp) as s3:
                if op == "put_many":
                    return len(s3.put_many([(k, payload) for k in keys]))
                got = s3.get_many(keys)
                assert all(o.size == size for o in got)
                return len(got)
    cpu0, t0 = _cpu(), time.perf_counter()
    n = run()
    wall, cpu = time.perf_counter() - t0, _cpu() - cpu0
    assert n == count, (engine, op, n)
    return {"wall_s": wall, "cpu_s": cpu}


def _boto3_op(op: str, root: str, keys: list[str], payload: bytes, tmp: str):
    from concurrent.futures import ThreadPoolExecutor

    import boto3

    bucket, _, prefix = root[len("s3://"):].partition("/")
    client = boto3.client("s3", endpoint_url=os.environ["HEADWATER_S3_ENDPOINT_URL"])

    def put(key: str) -> None:
        client.put_object(Bucket=bucket, Key=f"{prefix}/{key}", Body=payload)

    def get(key: str) -> None:
        body = client.get_object(Bucket=bucket, Key=f"{prefix}/{key}")["Body"]
        with open(os.path.join(tmp, key.replace("/", "_")), "wb") as f:
            for chunk in body.iter_chunks(1 << 20):
                f.write(chunk)

    def run() -> int:
        with ThreadPoolExecutor(BOTO3_THREADS) as pool:
            return len(list(pool.map(put if op == "put_many" else get, keys)))
    return run


# --- the driver ---------------------------------------------------------------------------------

def _metaflow_python(given: str | None) -> str | None:
    cands = [given] if given else [os.environ.get("HEADWATER_COMPAT_METAFLOW_PYTHON"),
                                   str(Path.home() / ".cache/headwater/compat-metaflow-2.19.39/bin/python"),
                                   "/work/mfvenv/bin/python", str(HERE / ".mfvenv/bin/python")]
    for cand in cands:
        if cand and os.path.exists(cand):
            ok = subprocess.run([cand, "-c", "import metaflow, boto3"], capture_output=True,
                                env={**os.environ, "METAFLOW_USER": "bench"}).returncode == 0
            if ok:
                return cand
    return None


def _run_worker(python: str, engine: str, op: str, root: str, args, env: dict, tmp: str) -> dict:
    cmd = [python, str(Path(__file__).resolve()), "--worker", engine, op, root, str(args.count),
           str(args.size_mib << 20), tmp]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp, timeout=args.timeout)
    if p.returncode != 0:
        raise RuntimeError(f"{engine} {op} failed:\n{p.stderr[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def _empty(server, bucket: str) -> None:
    client = server.boto3()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        objs = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if objs:
            client.delete_objects(Bucket=bucket, Delete={"Objects": objs})
    client.delete_bucket(Bucket=bucket)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--size-mib", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--engines", nargs="+", default=list(ENGINES), choices=ENGINES)
    ap.add_argument("--metaflow-python")
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--json", default=str(HERE / "results" / "s3_tools.json"))
    ap.add_argument("--worker", nargs=6, metavar=("ENGINE", "OP", "ROOT", "COUNT", "SIZE", "TMP"))
    args = ap.parse_args()
    if args.worker:
        engine, op, root, count, size, tmp = args.worker
        print(json.dumps(_worker(engine, op, root, int(count), int(size), tmp)))
        return 0

    from s3server import start_s3_server

    mf_python = _metaflow_python(args.metaflow_python) if "metaflow" in args.engines else None
    engines = [e for e in args.engines if e != "metaflow" or mf_python]
    if "metaflow" in args.engines and not mf_python:
        print("note: no Python with metaflow and boto3 found; Metaflow skipped", file=sys.stderr)
    pythons = {"headwater": sys.executable, "boto3": sys.executable, "metaflow": mf_python}
    server = start_s3_server()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("HEADWATER_", "METAFLOW_"))}
    env = {**base, **server.env(), "PYTHONPATH": str(ROOT / "src"), "HEADWATER_USER": "bench",
           "METAFLOW_S3_ENDPOINT_URL": server.url, "METAFLOW_USER": "bench"}
    samples: dict[str, dict[str, list[dict]]] = {e: {op: [] for op in OPS} for e in engines}
    try:
        for rep in range(args.repeat):
            for engine in engines:
                bucket = server.new_bucket(engine[:2])
                tmp = tempfile.mkdtemp(prefix=f"bench-s3-{engine}-")
                try:
                    for op in OPS:
                        s = _run_worker(pythons[engine], engine, op, f"s3://{bucket}/data", args, env, tmp)
                        samples[engine][op].append(s)
                        print(f"rep {rep + 1} {engine:9s} {op:8s} wall {s['wall_s']:7.2f} s  cpu {s['cpu_s']:7.2f} s",
                              file=sys.stderr)
                finally:
                    shutil.rmtree(tmp, ignore_errors=True)
                    _empty(server, bucket)
    finally:
        server.stop()

    total_mib = args.count * args.size_mib
    result = {"workload": f"{args.count} x {args.size_mib} MiB ({total_mib} MiB) put_many then get_many, "
                          "one moto server on 127.0.0.1",
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
              "repeat": args.repeat, "boto3_threads": BOTO3_THREADS, "median": {}, "samples": samples}
    rows = []
    for engine in engines:
        for op in OPS:
            wall = statistics.median(s["wall_s"] for s in samples[engine][op])
            cpu = statistics.median(s["cpu_s"] for s in samples[engine][op])
            result["median"].setdefault(engine, {})[op] = {"wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
                                                           "mib_per_s": round(total_mib / wall, 1)}
            rows.append((engine, op, wall, cpu, total_mib / wall))
    print(f"\n{result['workload']}, median of {args.repeat}\n")
    print("| engine | op | wall s | client CPU s | MiB/s |")
    print("|---|---|---:|---:|---:|")
    for engine, op, wall, cpu, rate in rows:
        print(f"| {engine} | {op} | {wall:.2f} | {cpu:.2f} | {rate:.0f} |")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
