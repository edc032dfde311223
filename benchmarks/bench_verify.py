"""Benchmark ``headwater verify``: throughput in GB/s over a local store of artifacts.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_verify.py [--size-mib 2048] [--repeat 3]

The store holds ``--size-mib`` of artifacts written through the real ContentStore:
three quarters in large incompressible float64 arrays (raw parts, 64 MiB each), one
eighth in compressible arrays (zstd frames), one eighth in 2,000 small blobs; run and
attempt records name them all, with every large blob shared by two runs. Each repeat
verifies the whole store in a fresh process (page cache warm after the first). The
floor printed beside it is blake3 of every blob file (``update_mmap``, all threads):
hashing the stored bytes with nothing else. Metaflow has no integrity check to compare.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

_LARGE = 64 << 20


def _build(root: str, size_text: str) -> dict:
    import numpy as np

    from headwater.store import Datastore

    size = int(size_text)
    ds = Datastore(root)
    rng = np.random.default_rng(0)
    refs: dict[str, dict] = {}
    large = size * 3 // 4
    for i in range(max(1, large // _LARGE)):
        refs[f"random_{i}"] = ds.content.save(rng.random(_LARGE // 8))
    packed = size // 8
    for i in range(max(1, packed // _LARGE)):
        refs[f"ramp_{i}"] = ds.content.save(np.arange(_LARGE // 8, dtype=np.float64) + i)
    small = size // 8
    for i in range(2000):
        refs[f"small_{i}"] = ds.content.save(rng.random(max(1024, small // 2000 // 8)))
    names = sorted(refs)
    for run in range(2):
        run_id = str(1_000_000 + run)
        ds.records.write_run({"version": 1, "flow": "BenchFlow", "run_id": run_id, "user": "bench", "tags": [],
                              "system_tags": [], "created_at": time.time(), "start_step": "start",
                              "end_step": "end", "parameters": [], "origin_run_id": None, "pid": 1, "host": "h",
                              "script": "bench.py"})
        # Each run names every large blob and half of the small ones: shared blobs are checked once.
        mine = [n for n in names if not n.startswith("small_") or int(n.split("_")[1]) % 2 == run]
        for t in range(0, len(mine), 100):
            ds.records.write_attempt({"version": 1, "flow": "BenchFlow", "run_id": run_id, "step": "start",
                                      "task_id": str(t + 1), "attempt": 0, "status": "ok", "started_at": 0.0,
                                      "finished_at": 0.0, "input_paths": [], "artifacts":
                                      {n: refs[n] for n in mine[t : t + 100]}, "exception": None,
                                      "metadata": {}})
    return {"bytes": sum(r["size"] for r in refs.values()), "blobs": len(refs)}


def _child_verify(root: str) -> dict:
    from headwater.store import open_object_store
    from headwater.store.verify import verify

    t = time.perf_counter()
    report = verify(open_object_store(root))
    dt = time.perf_counter() - t
    assert report.ok, report.as_dict()
    return {"seconds": dt, "bytes": report.progress.bytes_done, "blobs": report.progress.blobs_done}


def _child_floor(root: str) -> dict:
    import blake3

    t = time.perf_counter()
    n = 0
    for d, _, files in os.walk(os.path.join(root, "blobs")):
        for f in files:
            path = os.path.join(d, f)
            n += os.path.getsize(path)
            blake3.blake3(max_threads=blake3.blake3.AUTO).update_mmap(path)
    return {"seconds": time.perf_counter() - t, "bytes": n}


def _in_child(fn: str, *args: str) -> dict:
    code = f"import json, sys; sys.path.insert(0, {os.path.dirname(__file__)!r}); import bench_verify as b; " \
           f"print(json.dumps(b.{fn}(*sys.argv[1:])))"
    out = subprocess.run([sys.executable, "-c", code, *args], check=True, stdout=subprocess.PIPE, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-mib", type=int, default=2048, help="artifact bytes in the store (MiB)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dir", default=None, help="where to build the store (default: a temp dir)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="hw-bench-verify-") as tmp:
        root = os.path.join(tmp, ".headwater")
        built = _in_child("_build", root, str(args.size_mib << 20))
        print(f"store: {built['blobs']} blobs, {built['bytes'] / 1e9:.2f} GB logical, in {root}")
        runs = [_in_child("_child_verify", root) for _ in range(args.repeat)]
        floor = _in_child("_child_floor", root)
        best = min(runs, key=lambda r: r["seconds"])
        result = {"bench": "verify", "size_mib": args.size_mib, "blobs": best["blobs"], "bytes": best["bytes"],
                  "seconds": [round(r["seconds"], 3) for r in runs],
                  "gb_per_s": round(best["bytes"] / best["seconds"] / 1e9, 2),
                  "floor_gb_per_s": round(floor["bytes"] / floor["seconds"] / 1e9, 2), "cpus": os.cpu_count()}
        print(f"verify: {result['gb_per_s']} GB/s (best of {args.repeat}: {min(result['seconds'])} s); "
              f"blake3 of the files alone: {result['floor_gb_per_s']} GB/s")
        print(json.dumps(result))


if __name__ == "__main__":
    main()
