"""Benchmark the artifact store: save + load of a large float64 array through
ContentStore (GB/s, peak RSS / array size), plus listing 1,000 runs from the index.

    .venv/bin/python benchmarks/bench_store.py [--size-mib 1024] [--repeat 3] [--cold]

Save and load each run in a fresh process, as a step and the next step would;
peak RSS is the process's VmHWM divided by the array size.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time


def _status(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _child_save(root: str, size: int, data: str) -> dict:
    import numpy as np

    from headwater.store import Datastore

    base_rss = _status("VmRSS")
    n = size // 8
    arr = np.random.default_rng(0).random(n) if data == "random" else np.arange(n, dtype=np.float64)
    ds = Datastore(root)
    t = time.perf_counter()
    ref = ds.content.save(arr)
    dt = time.perf_counter() - t
    hwm = _status("VmHWM")
    # Baseline: the same bytes written straight to a new file (the floor for any store).
    t = time.perf_counter()
    fd = os.open(os.path.join(root, "baseline.bin"), os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    view = memoryview(arr).cast("B")
    pos = 0
    while pos < view.nbytes:
        pos += os.write(fd, view[pos : pos + (1 << 30)])
    os.close(fd)
    raw_dt = time.perf_counter() - t
    return {"ref": ref, "seconds": dt, "raw_write_seconds": raw_dt, "hwm": hwm, "base_rss": base_rss}


def _child_load(root: str, ref: dict) -> dict:
    import numpy  # noqa: F401  (a step that uses arrays has imported numpy already)

    from headwater.store import Datastore

    base_rss = _status("VmRSS")
    ds = Datastore(root)
    t = time.perf_counter()
    arr = ds.content.load(ref)  # verify=True: hashes every byte
    dt = time.perf_counter() - t
    t = time.perf_counter()
    arr.sum()  # one full pass, as a consumer would
    dt_pass = time.perf_counter() - t
    hwm = _status("VmHWM")
    del arr
    t = time.perf_counter()
    ds.content.load(ref, verify=False)  # raw buffers: mmap only, nothing read yet
    dt_lazy = time.perf_counter() - t
    return {"seconds": dt, "pass_seconds": dt_pass, "lazy_seconds": dt_lazy, "hwm": hwm, "base_rss": base_rss}


def _run_child(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", *args], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def _drop_caches() -> bool:
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def bench_roundtrip(size: int, repeat: int, data: str, cold: bool) -> None:
    gb = size / 1e9
    saves, loads, rows = [], [], []
    for i in range(repeat):
        with tempfile.TemporaryDirectory(prefix="hw-bench-") as root:
            s = _run_child("save", root, str(size), data)
            dropped = _drop_caches() if cold else False
            ld = _run_child("load", root, json.dumps(s["ref"]))
        saves.append(s["seconds"])
        loads.append(ld["seconds"])
        rows.append((s, ld))
        cold_note = ", cold" if dropped else ""
        print(
            f"  #{i + 1}: save {gb / s['seconds']:.2f} GB/s ({s['seconds']:.2f} s, peak RSS {s['hwm'] / size:.3f}x; "
            f"plain os.write {gb / s['raw_write_seconds']:.2f} GB/s)  load+verify {gb / ld['seconds']:.2f} GB/s "
            f"({ld['seconds']:.2f} s, peak RSS {ld['hwm'] / size:.3f}x{cold_note})  "
            f"lazy load {ld['lazy_seconds'] * 1e3:.2f} ms  first pass {ld['pass_seconds']:.2f} s"
        )
    ms, ml = statistics.median(saves), statistics.median(loads)
    mraw = statistics.median(s["raw_write_seconds"] for s, _ in rows)
    peak = max(max(s["hwm"], ld["hwm"]) for s, ld in rows) / size
    print(
        f"median: save {gb / ms:.2f} GB/s (plain os.write of the same bytes {gb / mraw:.2f} GB/s), "
        f"load(verify) {gb / ml:.2f} GB/s, round trip {gb / (ms + ml):.2f} GB/s (target >= 0.8); "
        f"worst peak RSS {peak:.3f}x (target <= 1.15)"
    )


def bench_index(n_runs: int = 1000, repeat: int = 20) -> None:
    from headwater.meta import Index

    with tempfile.TemporaryDirectory(prefix="hw-bench-") as root:
        idx = Index(root)
        for i in range(n_runs):
            idx.add_run({"flow": "F", "run_id": str(1_000_000 + i), "user": "u", "tags": ["a", f"t{i % 10}"],
                         "system_tags": ["user:u", "runtime:dev"], "created_at": 1e9 + i,
                         "start_step": "start", "end_step": "end", "pid": 1, "host": "h"})  # fmt: skip
        for flow in ("G", "H"):
            for i in range(n_runs):
                idx.add_run({"flow": flow, "run_id": str(i), "created_at": float(i), "tags": []})
        idx.close()
        idx = Index(root)
        times, tagged = [], []
        for _ in range(repeat):
            t = time.perf_counter()
            rows = idx.runs("F")
            times.append(time.perf_counter() - t)
            t = time.perf_counter()
            trows = idx.runs("F", tags=["a", "t3"])
            tagged.append(time.perf_counter() - t)
        assert len(rows) == n_runs and len(trows) == n_runs // 10
        print(
            f"index: list {n_runs} runs median {statistics.median(times) * 1e3:.2f} ms "
            f"(target <= 50), with a 2-tag filter {statistics.median(tagged) * 1e3:.2f} ms"
        )
        idx.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--data", choices=["random", "ramp"], default="random",
                    help="random floats (stored raw) or a ramp (zstd-compressed)")  # fmt: skip
    ap.add_argument("--cold", action="store_true", help="drop the page cache before each load (needs root)")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        kind, root, *rest = a.child
        res = _child_save(root, int(rest[0]), rest[1]) if kind == "save" else _child_load(root, json.loads(rest[0]))
        print(json.dumps(res))
        return
    size = a.size_mib << 20
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"store: {a.size_mib} MiB float64 ({a.data}), {a.repeat} runs, cpus={cpus}")
    bench_roundtrip(size, a.repeat, a.data, a.cold)
    bench_index()


if __name__ == "__main__":
    main()
