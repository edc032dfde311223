"""Benchmark saving compressible data (issue 12): compression must never make a save slower
than the disk. 1 GiB arrays saved through ``ContentStore`` on the local store.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_compress.py [--size-mib 1024] [--repeat 3] [--json OUT]

Arrays: ``arange`` (np.arange float64, zstd-1 shrinks it ~10x), ``image`` (a smooth float32
image with quantized values, ~2x), ``ids`` (int64 ids below 10^6, ~2.3x) and ``random``
(float64, incompressible: stored raw by the sample probe). Modes:

- ``adaptive``: the writer as it is (frames compressed ahead of it, raw when not ready);
- ``raw``: every frame written raw (``codec._choose_frames`` choosing none): the same
  bytes through the same path with no compression at all, the floor to compare with;
- ``all-zstd``: every frame compressed before it is written (``_choose_frames`` choosing
  each), byte for byte what the writer did before the adaptive one.

The modes run interleaved within each round, each first in turn, after one warm-up save,
so a noisy moment on a shared machine hits them alike. Each save first syncs the page cache (so one save's dirty pages do not slow
the next), then times ``ContentStore.save`` (hashing included, as a step pays it). ``load_s`` is
``ContentStore.load`` (which verifies the key) followed by one pass over the values
(``sum``): a mapped raw blob pays its reads in the pass, a decoded one in the load.
Figures are medians over ``--repeat`` rounds, and the best round's save time beside
them (on a shared machine other work only ever adds time: page reclaim, writeback).

A second table writes ``--sink-size-mib`` arrays with ``write_blob`` into a sink that
takes ``--sink-mbps`` (like an upload link; it sleeps, using no CPU): there the workers
stay ahead of the writer, and the adaptive writer compresses what the link leaves time for.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from typing import Any

import numpy as np

ARRAYS = ("arange", "image", "ids", "random")
MODES = ("adaptive", "raw", "all-zstd")
_CHOICES = {"adaptive": None, "raw": lambda part, frame: False, "all-zstd": lambda part, frame: True}


def _array(name: str, size: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    if name == "arange":
        return np.arange(size // 8, dtype=np.float64)
    if name == "random":
        return rng.random(size // 8)
    if name == "ids":
        return rng.integers(0, 10**6, size // 8, dtype=np.int64)
    side = int((size // 4) ** 0.5)  # float32 image: smooth bands, one decimal, a little noise
    y = np.sin(np.linspace(0, 40, side, dtype=np.float32))[:, None] * 100
    x = np.cos(np.linspace(0, 70, side, dtype=np.float32))[None, :] * 50
    img = np.round(y + x, 1)
    img += rng.integers(0, 3, img.shape).astype(np.float32) / 10
    return img


def _frames(path: str) -> tuple[int, int]:
    """(zstd frames, all frames) of the blob's largest part (a raw part counts as 0 of 0)."""
    import struct

    with open(path, "rb") as f:
        _, hlen = struct.unpack("<4sI", f.read(8))
        parts = json.loads(f.read(hlen))["parts"]
    part = max(parts, key=lambda p: p[2])
    if part[3] != "zstd":
        return 0, 0
    frames = part[4] if len(part) > 4 else [[part[2], part[1]]]
    return sum(len(fr) == 2 for fr in frames), len(frames)


def _one(root: str, arr: np.ndarray, mode: str) -> dict[str, Any]:
    from headwater.store import ContentStore, LocalObjectStore, codec
    from headwater.store.content import blob_key

    cs = ContentStore(LocalObjectStore(root))
    codec._choose_frames = _CHOICES[mode]
    try:
        os.sync()
        t = time.perf_counter()
        ref = cs.save(arr)
        save_s = time.perf_counter() - t
    finally:
        codec._choose_frames = None
    path = cs.objects.path(blob_key(ref["key"]))
    stored = os.path.getsize(path)
    zstd_frames, frames = _frames(path)
    t = time.perf_counter()
    out = cs.load(ref)
    out.sum()
    load_s = time.perf_counter() - t
    del out
    os.unlink(path)
    return {"save_s": save_s, "stored": stored, "zstd_frames": zstd_frames, "frames": frames, "load_s": load_s}


class _SlowSink:
    """A file that takes ``rate`` bytes per second, like an upload link (sleeps, using no CPU)."""

    def __init__(self, f: Any, rate: float):
        self._f, self._rate, self._sent, self._t0 = f, rate, 0, time.perf_counter()

    def write(self, data: Any) -> int:
        n = self._f.write(data)
        self._sent += memoryview(data).nbytes
        ahead = self._sent / self._rate - (time.perf_counter() - self._t0)
        if ahead > 0:
            time.sleep(ahead)
        return n

    def __getattr__(self, name: str) -> Any:
        return getattr(self._f, name)


def _slow_sink(root: str, arr: np.ndarray, mode: str, rate: float) -> dict[str, Any]:
    """``write_blob`` into a sink of ``rate`` bytes/s: the writer waits on the sink, so
    the frames compressed ahead are what a slow link gets."""
    from headwater.store import codec

    enc = codec.encode(arr)
    path = os.path.join(root, "slow.blob")
    codec._choose_frames = _CHOICES[mode]
    try:
        t = time.perf_counter()
        with open(path, "wb") as f:
            codec.write_blob(enc, _SlowSink(f, rate))  # type: ignore[arg-type]
        save_s = time.perf_counter() - t
    finally:
        codec._choose_frames = None
    stored = os.path.getsize(path)
    zstd_frames, frames = _frames(path)
    os.unlink(path)
    return {"save_s": save_s, "stored": stored, "zstd_frames": zstd_frames, "frames": frames}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", nargs="+", choices=ARRAYS, default=list(ARRAYS))
    ap.add_argument("--json", dest="json_out")
    ap.add_argument("--tmpdir", default=None)
    ap.add_argument("--sink-mbps", type=float, default=250, help="the slow sink's rate (MB/s)")
    ap.add_argument("--sink-size-mib", type=int, default=256, help="array size for the slow sink (0: skip)")
    args = ap.parse_args()
    size = args.size_mib << 20
    rows = []
    with tempfile.TemporaryDirectory(prefix="hw-bench-compress-", dir=args.tmpdir) as root:
        for name in args.only:
            arr = _array(name, size)
            modes = ("adaptive",) if name == "random" else MODES
            runs: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
            _one(root, arr, "raw")  # warm-up: the first 1 GiB written into the page cache costs more
            for k in range(args.repeat):
                for mode in modes[k % len(modes):] + modes[: k % len(modes)]:  # interleaved, each first in turn
                    runs[mode].append(_one(root, arr, mode))
            for mode in modes:
                rs = runs[mode]
                med = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
                rows.append({"array": name, "mode": mode, "bytes": arr.nbytes, "repeat": args.repeat,
                             "save_s": med["save_s"], "save_gbps": arr.nbytes / med["save_s"] / 1e9,
                             "best_save_s": min(r["save_s"] for r in rs),
                             "stored_ratio": med["stored"] / arr.nbytes, "zstd_frames": int(med["zstd_frames"]),
                             "frames": int(med["frames"]), "load_s": med["load_s"], "runs": rs})
            del arr
        if args.sink_size_mib:
            for name in ("arange", "ids", "random"):
                arr = _array(name, args.sink_size_mib << 20)
                modes = ("adaptive",) if name == "random" else MODES
                runs = {m: [] for m in modes}
                for k in range(args.repeat):
                    for mode in modes[k % len(modes):] + modes[: k % len(modes)]:
                        runs[mode].append(_slow_sink(root, arr, mode, args.sink_mbps * 1e6))
                for mode in modes:
                    rs = runs[mode]
                    med = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
                    rows.append({"array": name, "mode": f"{mode}, {args.sink_mbps:g} MB/s sink", "bytes": arr.nbytes,
                                 "repeat": args.repeat, "save_s": med["save_s"],
                                 "best_save_s": min(r["save_s"] for r in rs),
                                 "save_gbps": arr.nbytes / med["save_s"] / 1e9,
                                 "stored_ratio": med["stored"] / arr.nbytes, "zstd_frames": int(med["zstd_frames"]),
                                 "frames": int(med["frames"]), "load_s": None, "runs": rs})
                del arr
    print("| array | mode | save s | save GB/s | best save s | stored / size | zstd frames | load + pass s |")
    print("|---|---|--:|--:|--:|--:|--:|--:|")
    for r in rows:
        frames = f"{r['zstd_frames']}/{r['frames']}" if r["frames"] else "raw part"
        load = "" if r["load_s"] is None else f"{r['load_s']:.3f}"
        print(f"| {r['array']} | {r['mode']} | {r['save_s']:.3f} | {r['save_gbps']:.2f} | {r['best_save_s']:.3f} | "
              f"{r['stored_ratio']:.3f} | {frames} | {load} |")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
