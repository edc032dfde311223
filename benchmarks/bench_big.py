#!/usr/bin/env python3
"""Big artifacts, headwater vs Metaflow: a float64 array saved in one step and loaded in the
next, a 1% slice of it, and a DataFrame round trip.

    python benchmarks/bench_big.py [--array-gib 10] [--metaflow-array-gib 1 2 4]
        [--slice] [--s3-slice-gib 2] [--frame-gib 1] [--metaflow-python P] [--json OUT]

Every figure comes from real ``python flow.py run`` commands (one flow template rendered
for each framework, as ``benchmarks/run.py`` does), launched by ``_measure.py``:

- ``array``: ``start`` fills an N GiB float64 array and stores it; ``consume`` reads
  ``self.big`` and sums it. save s = from the end of ``start``'s code to the start of
  ``consume``'s (storing the artifact, ending the task, starting the next); load s = the
  attribute access; pass s = the sum. Peak RSS is the largest single process of the run
  (``ru_maxrss``, what an OOM killer sees), divided by the array's size; ``load peak`` is
  the consume task's own VmHWM growth (reset at its start) over the array's size.
- ``slice``: ``consume`` reads 1% of the array from its middle. Time to first byte =
  from the start of ``consume``'s code to holding the slice's first element;
  headwater with ``headwater.view(self, "big")[a:b]`` and with plain ``self.big[a:b]``,
  Metaflow with ``self.big[a:b]`` (it has no partial read). RSS growth is the task's.
- ``s3-slice`` (headwater only, in process): the array is saved to a moto S3 server
  (``tests/s3server.py``) or the server at ``--s3-endpoint``, the read cache emptied, then
  the time to a 1% slice through a view (ranged GETs) against a full load (download +
  map), and the bytes each fetched. moto reads the whole stored object for every ranged
  GET, so its times are per-request cost; a file-backed server such as s3rver
  (``npx s3rver -d DIR -p 4599 --configure-bucket big``) serves ranges as S3 does.
- ``frame``: a DataFrame of 8 float64 columns (N GiB) stored in ``start``, loaded and
  summed in ``consume``; same measures as ``array``.

Metaflow runs in its scratch venv (``--metaflow-python``, with numpy and pandas). Metaflow
pickles the array and holds several copies while saving, so it is run only at the sizes
given with ``--metaflow-array-gib`` (its peak is reported; a run that dies is reported as
failed, with its exit status).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from run import DEFAULT_MF_PYTHON, MEASURE, _clean_env  # noqa: E402

GIB = 1 << 30
HW, MF = "headwater", "metaflow"

_COMMON = '''\
import json, time
import numpy as np
__IMPORT__


def _kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])


def _reset_peak():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _report(**kw):
    print("BENCH " + json.dumps(kw), flush=True)


def _array(gib):
    n = int(gib * 2**30) // 64 * 8  # a multiple of 8 elements (the frame's columns)
    a = np.empty(n)
    rng = np.random.default_rng(0)
    step = 1 << 24
    for i in range(0, n, step):
        rng.random(out=a[i : i + step])
    return a
'''

_ARRAY = _COMMON + '''

class BigArrayFlow(FlowSpec):
    gib = Parameter("gib", default=1.0, type=float)
    mode = Parameter("mode", default="full")

    @step
    def start(self):
        self.big = _array(self.gib)
        _report(made=time.time())
        self.next(self.consume)

    @step
    def consume(self):
        t0 = time.time()
        _reset_peak()
        base = _kib("VmRSS")
        if self.mode == "full":
            big = self.big
            t1 = time.time()
            total = float(big.sum())
            t2 = time.time()
            _report(consume_start=t0, loaded=t1, summed=t2, load_peak_kib=_kib("VmHWM") - base)
            self.total = total
        else:
            n = int(self.gib * 2**30) // 8
            a, b = n // 2, n // 2 + n // 100
            part = __SLICE__[a:b]
            first = float(part[0])
            t1 = time.time()
            _report(consume_start=t0, first_byte=t1, rss_growth_kib=_kib("VmRSS") - base,
                    slice_ok=bool(first == first))
            self.total = float(part.sum())
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    BigArrayFlow()
'''

_FRAME = _COMMON + '''
import pandas as pd


class BigFrameFlow(FlowSpec):
    gib = Parameter("gib", default=1.0, type=float)

    @step
    def start(self):
        a = _array(self.gib).reshape(8, -1)  # pandas keeps the (columns, rows) block as is: no copy
        self.df = pd.DataFrame(a.T, columns=[f"c{i}" for i in range(8)], copy=False)
        del a
        _report(made=time.time())
        self.next(self.consume)

    @step
    def consume(self):
        t0 = time.time()
        _reset_peak()
        base = _kib("VmRSS")
        df = self.df
        t1 = time.time()
        total = float(df.sum().sum())
        t2 = time.time()
        _report(consume_start=t0, loaded=t1, summed=t2, load_peak_kib=_kib("VmHWM") - base, rows=len(df))
        self.total = total
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    BigFrameFlow()
'''


def _render(template: str, fw: str, slice_expr: str = "self.big") -> str:
    imp = ("import headwater\nfrom headwater import FlowSpec, Parameter, step" if fw == HW
           else "from metaflow import FlowSpec, Parameter, step")
    return template.replace("__IMPORT__", imp).replace("__SLICE__", slice_expr)


def run_flow(fw: str, python: str, source: str, args: list[str], tmp: str, timeout: float) -> dict:
    """One measured ``python flow.py run ARGS`` in a fresh directory; its BENCH lines merged."""
    work = Path(tempfile.mkdtemp(prefix=f"hwbig-{fw}-", dir=tmp))
    try:
        (work / "flow.py").write_text(source)
        env = _clean_env()
        if fw == HW:
            env.update(HEADWATER_DATASTORE_ROOT=str(work / ".headwater"), HEADWATER_HOME=str(work / "home"),
                       HEADWATER_USER="bench")
        else:
            env.update(METAFLOW_HOME=str(work / "home"), METAFLOW_USER="bench", METAFLOW_DATASTORE_SYSROOT_LOCAL=str(work),
                       METAFLOW_DEFAULT_DATASTORE="local", METAFLOW_DEFAULT_METADATA="local")
        spec = {"cmd": [python, "flow.py", "--no-pylint", "run", *args] if fw == MF
                else [python, "flow.py", "run", *args],
                "cwd": str(work), "env": env, "stdout": str(work / "out"), "stderr": str(work / "err"),
                "timeout": timeout}
        p = subprocess.run([sys.executable, str(MEASURE), json.dumps(spec)], capture_output=True, text=True)
        m = json.loads(p.stdout.strip().splitlines()[-1])
        out = (work / "out").read_text(errors="replace") + (work / "err").read_text(errors="replace")
        fields: dict = {}
        for line in out.splitlines():
            at = line.find("BENCH ")
            if at >= 0:
                fields.update(json.loads(line[at + 6 :]))
        m.update(fields)
        m["ok"] = m["rc"] == 0
        if not m["ok"]:
            m["tail"] = out[-2000:]
        return m
    finally:
        shutil.rmtree(work, ignore_errors=True)


def round_trip_row(fw: str, python: str, gib: float, template: str, tmp: str, timeout: float) -> dict:
    """One run of a save-then-load flow (``_ARRAY`` or ``_FRAME``) as a result row."""
    m = run_flow(fw, python, _render(template, fw), ["--gib", str(gib)], tmp, timeout)
    row = {"framework": fw, "gib": gib, "ok": m["ok"], "rc": m["rc"], "wall_s": round(m["wall_s"], 2),
           "peak_rss_x": round(m["maxrss_kib"] * 1024 / (gib * GIB), 3)}
    if m["ok"]:
        row.update(save_s=round(m["consume_start"] - m["made"], 2), load_s=round(m["loaded"] - m["consume_start"], 3),
                   pass_s=round(m["summed"] - m["loaded"], 2),
                   load_peak_x=round(m["load_peak_kib"] * 1024 / (gib * GIB), 3))
    else:
        row["tail"] = m.get("tail", "")[-600:]
    return row


def slice_row(fw: str, python: str, gib: float, how: str, tmp: str, timeout: float) -> dict:
    expr = 'headwater.view(self, "big")' if how == "view" else "self.big"
    m = run_flow(fw, python, _render(_ARRAY, fw, expr), ["--gib", str(gib), "--mode", "slice"], tmp, timeout)
    row = {"framework": fw, "how": how, "gib": gib, "ok": m["ok"], "rc": m["rc"]}
    if m["ok"]:
        row.update(ttfb_s=round(m["first_byte"] - m["consume_start"], 4),
                   rss_growth_mib=round(m["rss_growth_kib"] / 1024, 1))
    else:
        row["tail"] = m.get("tail", "")[-600:]
    return row


def s3_slice(gib: float, tmp: str, endpoint: str | None = None, bucket: str | None = None) -> dict:
    """A 1% slice through a view vs a full load, cold cache, in process: on a moto S3 server
    this script starts, or on the S3 server at ``endpoint`` (``bucket`` must exist there)."""
    import numpy as np

    from s3server import start_s3_server

    server = None if endpoint else start_s3_server()
    try:
        if server is not None:
            os.environ.update(server.env())
            bucket = server.new_bucket()
        else:
            os.environ.update({"HEADWATER_S3_ENDPOINT_URL": endpoint, "AWS_REGION": "us-east-1",
                               "AWS_DEFAULT_REGION": "us-east-1"})
            os.environ.setdefault("AWS_ACCESS_KEY_ID", "S3RVER")
            os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "S3RVER")
        os.environ["HEADWATER_HOME"] = tempfile.mkdtemp(prefix="hwbig-s3home-", dir=tmp)
        from headwater.store import Datastore
        from headwater.store.content import blob_key

        ds = Datastore(f"s3://{bucket}/big")
        n = int(gib * GIB) // 8
        a = np.random.default_rng(0).random(n)
        t = time.perf_counter()
        ref = ds.content.save(a)
        upload = time.perf_counter() - t
        del a
        bkey = blob_key(ref["key"])
        cached = ds.objects._cache_path(bkey)
        ds.objects.cache.discard(cached)
        t = time.perf_counter()
        v = ds.content.view(ref)
        part = v[n // 2 : n // 2 + n // 100]
        float(part[0])
        ttfb = time.perf_counter() - t
        fetched = v._lazy._ranged.fetched
        v.close()
        ds.objects.cache.discard(cached)
        ds.objects.cache.discard(cached + ".partial")
        t = time.perf_counter()
        whole = ds.content.load(ref)
        float(whole[n // 2])
        full = time.perf_counter() - t
        return {"server": endpoint or "moto", "gib": gib, "upload_s": round(upload, 2), "view_ttfb_s": round(ttfb, 3),
                "view_fetched_mib": round(fetched / 2**20, 1), "full_load_s": round(full, 2),
                "full_fetched_mib": round(ref["size"] / 2**20, 1)}
    finally:
        if server is not None:
            server.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--array-gib", type=float, nargs="*", default=[10.0], help="headwater array sizes")
    ap.add_argument("--metaflow-array-gib", type=float, nargs="*", default=[1.0], help="Metaflow array sizes")
    ap.add_argument("--slice", action="store_true", help="time to first byte of a 1%% slice")
    ap.add_argument("--slice-gib", type=float, default=10.0)
    ap.add_argument("--metaflow-slice-gib", type=float, default=1.0)
    ap.add_argument("--s3-slice-gib", type=float, default=0.0, help="headwater on S3 (0: skip)")
    ap.add_argument("--s3-endpoint", help="an S3 server to use instead of moto (e.g. s3rver, MinIO)")
    ap.add_argument("--s3-bucket", default="big", help="an existing bucket on --s3-endpoint")
    ap.add_argument("--frame-gib", type=float, default=0.0, help="DataFrame round trip size (0: skip)")
    ap.add_argument("--metaflow-python", default=str(DEFAULT_MF_PYTHON))
    ap.add_argument("--no-metaflow", action="store_true")
    ap.add_argument("--tmpdir", default=None)
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--json", metavar="OUT")
    args = ap.parse_args()
    tmp = args.tmpdir or tempfile.gettempdir()
    mf = None if args.no_metaflow or not os.path.exists(args.metaflow_python) else args.metaflow_python
    results: dict = {"machine": {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "nproc": os.cpu_count(),
                                 "platform": platform.platform(), "python": platform.python_version()}}

    def show(section: str, row: dict) -> None:
        results.setdefault(section, []).append(row)
        print(section, json.dumps(row), flush=True)

    for gib in args.array_gib:
        show("array", round_trip_row(HW, sys.executable, gib, _ARRAY, tmp, args.timeout))
    if mf:
        for gib in args.metaflow_array_gib:
            show("array", round_trip_row(MF, mf, gib, _ARRAY, tmp, args.timeout))
    if args.slice:
        show("slice", slice_row(HW, sys.executable, args.slice_gib, "view", tmp, args.timeout))
        show("slice", slice_row(HW, sys.executable, args.slice_gib, "attribute", tmp, args.timeout))
        if mf:
            show("slice", slice_row(HW, sys.executable, args.metaflow_slice_gib, "view", tmp, args.timeout))
            show("slice", slice_row(MF, mf, args.metaflow_slice_gib, "attribute", tmp, args.timeout))
    if args.s3_slice_gib:
        show("s3_slice", s3_slice(args.s3_slice_gib, tmp, args.s3_endpoint, args.s3_bucket))
    if args.frame_gib:
        show("frame", round_trip_row(HW, sys.executable, args.frame_gib, _FRAME, tmp, args.timeout))
        if mf:
            show("frame", round_trip_row(MF, mf, args.frame_gib, _FRAME, tmp, args.timeout))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
