"""Benchmark the typed codecs: a large pandas DataFrame artifact saved and loaded
(seconds, peak RSS / frame size), headwater's Arrow codec against plain pickle.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_codecs.py [--size-mib 1024] [--repeat 1] [--json OUT]

Modes, each saved in one fresh process and loaded in another (as a step and the next):

- ``headwater``: ``Datastore.content.save`` / ``load`` with the pandas codec (Arrow IPC,
  mmap'ed and zero copy on load; ``load`` verifies every byte against its key);
- ``headwater-pickle``: the same store with the codec turned off (pickle protocol 5,
  numpy blocks out of band), the path every frame took before the codec;
- ``pickle``: ``pickle.dump`` / ``pickle.load`` to a plain file, the baseline.

The frame is mostly random float64 (incompressible) plus int64, nullable Int64 and a
categorical. After loading, one pass over every numeric column (``sum``) reads all
the data, as a consumer would; ``load_s`` excludes it, ``pass_s`` is that pass.
Peak RSS is the process's VmHWM minus its RSS before the frame was made or loaded
(for saving, VmHWM is restarted once the frame is made, so it counts the frame
itself plus what saving adds).
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

MODES = ("headwater", "headwater-pickle", "pickle")


def _status(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak() -> None:
    """Restart VmHWM from the current RSS (Linux: "5" to clear_refs), so making the
    frame's temporaries does not count as the save's peak."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _frame(size: int):
    import numpy as np
    import pandas as pd

    rows = size // 64  # 8 columns of 8 bytes (the categorical's codes are 1 byte)
    rng = np.random.default_rng(0)
    cols = {f"f{i}": rng.random(rows) for i in range(5)}
    cols["i"] = np.arange(rows, dtype=np.int64)
    cols["n"] = pd.array(np.where(np.arange(rows) % 10 == 0, None, np.arange(rows)), dtype="Int64")
    cols["k"] = pd.Categorical.from_codes(rng.integers(0, 4, rows, dtype=np.int8), ["a", "b", "c", "d"])
    return pd.DataFrame(cols)


def _no_codec() -> None:
    import pandas as pd

    from headwater.store import codec_plugins

    codec_plugins._reducers[pd.DataFrame] = None  # plain pickle for frames, as before the codec


def _child_save(mode: str, root: str, size: int) -> dict:
    import pandas  # noqa: F401  (a step that makes frames has imported pandas)

    base = _status("VmRSS")
    df = _frame(size)
    nbytes = int(df.memory_usage(deep=True).sum())
    made = _status("VmRSS")
    _reset_peak()
    t = time.perf_counter()
    if mode == "pickle":
        import pickle

        with open(os.path.join(root, "frame.pkl"), "wb") as f:
            pickle.dump(df, f, protocol=5)
        ref = None
    else:
        from headwater.store import Datastore

        if mode == "headwater-pickle":
            _no_codec()
        ref = Datastore(root).content.save(df)
    dt = time.perf_counter() - t
    return {"ref": ref, "seconds": dt, "nbytes": nbytes, "hwm": _status("VmHWM"), "base": base, "made": made}


def _child_load(mode: str, root: str, ref: dict | None) -> dict:
    import pandas  # noqa: F401

    base = _status("VmRSS")
    t = time.perf_counter()
    if mode == "pickle":
        import pickle

        with open(os.path.join(root, "frame.pkl"), "rb") as f:
            df = pickle.load(f)
    else:
        from headwater.store import Datastore

        df = Datastore(root).content.load(ref)
    dt = time.perf_counter() - t
    after_load = _status("VmRSS")
    t = time.perf_counter()
    df.sum(numeric_only=True)
    dt_pass = time.perf_counter() - t
    return {"seconds": dt, "pass_seconds": dt_pass, "hwm": _status("VmHWM"), "base": base,
            "rss_after_load": after_load}


def _run_child(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", *args], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def bench(mode: str, size: int, tmpdir: str | None) -> dict:
    with tempfile.TemporaryDirectory(dir=tmpdir, prefix="hw-bench-codecs-") as root:
        saved = _run_child("save", mode, root, str(size))
        loaded = _run_child("load", mode, root, json.dumps(saved["ref"]))
    n = saved["nbytes"]
    return {
        "mode": mode,
        "frame_bytes": n,
        "save_s": saved["seconds"],
        "save_peak_x": (saved["hwm"] - saved["base"]) / n,
        "load_s": loaded["seconds"],
        "load_rss_x": (loaded["rss_after_load"] - loaded["base"]) / n,
        "pass_s": loaded["pass_seconds"],
        "load_peak_x": (loaded["hwm"] - loaded["base"]) / n,
    }


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        kind, mode, root, arg = sys.argv[2:6]
        result = _child_save(mode, root, int(arg)) if kind == "save" else _child_load(mode, root, json.loads(arg))
        print(json.dumps(result))
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size-mib", type=int, default=1024)
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--only", nargs="*", choices=MODES, default=list(MODES))
    p.add_argument("--tmpdir", default=None, help="where the stores go (default: the system temp dir)")
    p.add_argument("--json", default=None, help="write the raw results here")
    args = p.parse_args()
    size = args.size_mib << 20
    rows = []
    for mode in args.only:
        runs = [bench(mode, size, args.tmpdir) for _ in range(args.repeat)]
        row = {k: (statistics.median(r[k] for r in runs) if isinstance(runs[0][k], float) else runs[0][k])
               for k in runs[0]}
        rows.append(row)
    print(f"DataFrame artifact, {rows[0]['frame_bytes'] / (1 << 20):.0f} MiB, median of {args.repeat}\n")
    print("| mode | save s | save peak RSS / frame | load s | RSS after load / frame | full pass s | "
          "load peak RSS / frame |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['mode']} | {r['save_s']:.3f} | {r['save_peak_x']:.2f}x | {r['load_s']:.3f} | "
              f"{r['load_rss_x']:.2f}x | {r['pass_s']:.3f} | {r['load_peak_x']:.2f}x |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
