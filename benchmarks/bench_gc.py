"""Benchmark ``headwater gc``: seconds to collect a store of 1,000 runs, local and S3 (moto).

    PYTHONPATH=src .venv/bin/python benchmarks/bench_gc.py [--runs 1000] [--repeat 1] \
        [--stores local,s3] [--json benchmarks/results/gc.json]

How the store is built (fast, with the store's own writers): three real runs of
``tests/flows/gc_flow.py`` go into a local store first; their run and attempt records are
the templates. Each of the ``--runs`` runs is then written with ``RecordStore.write_run``,
``write_attempt`` and ``write_run_end`` as a copy of a template under a new run id, naming
the template's shared array (one of three, shared by a third of the runs each) and one
array of its own saved with ``ContentStore.save`` (a unique 64 KiB blob), plus its logs.
So every run has 4 records, 4 log files and one blob of its own, as a real run of that
flow has. For S3 the same writers write to a bucket on a local moto server. The index is
built at the end of the build (runs keep it up to date), so gc's time does not include a
rebuild of a missing index.

Each repeat builds a fresh store, then times ``gc --keep-last N/2`` in a fresh process
(``store.gc.collect``: read every run and record, list the blobs, delete half the runs'
records, logs and own blobs under the sweep lease, forget them in the index), and a
``--dry-run`` (the plan alone) before it. Metaflow has no garbage collection to compare.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FLOW = REPO / "tests" / "flows" / "gc_flow.py"


def _templates(work: str) -> list[dict]:
    """Three real runs of the gc flow; the records of each."""
    root = os.path.join(work, "templates", ".headwater")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    env.update({"HEADWATER_DATASTORE_ROOT": root, "HEADWATER_USER": "bench", "HEADWATER_HOME": os.path.join(work, "h")})
    for pick in range(3):
        subprocess.run([sys.executable, str(FLOW), "run", "--pick", str(pick), "--salt", "0"], env=env, check=True,
                       capture_output=True)
    out = []
    runs = Path(root, "runs", "GcFlow")
    for run_dir in sorted(runs.iterdir()):
        out.append({"run": json.loads((run_dir / "_run.json").read_text()),
                    "end": json.loads((run_dir / "_run_end.json").read_text()),
                    "attempts": [json.loads(p.read_text()) for p in sorted(run_dir.rglob("[0-9]*.json"))],
                    "blobs": {str(p.relative_to(root)): p.read_bytes()
                              for p in Path(root, "blobs").rglob("*") if p.is_file()}})
    return out


def _build(root: str, templates_file: str, runs: str) -> dict:
    import numpy as np

    from headwater.store import Datastore

    templates = json.loads(Path(templates_file).read_text())
    ds = Datastore(root)
    for key, data in templates[0]["blobs"].items():  # the shared arrays, as the real runs stored them
        ds.objects.put(key, bytes.fromhex(data))
    base = 1_700_000_000_000_000
    t = time.perf_counter()
    for i in range(int(runs)):
        tpl = templates[i % len(templates)]
        run_id = str(base + i)
        ds.content.for_run("GcFlow", run_id)
        ds.records.write_run({**tpl["run"], "run_id": run_id, "created_at": 1_700_000_000.0 + i})
        own = ds.content.save(np.full(8192, i + 1, dtype=np.int64))
        for rec in tpl["attempts"]:
            rec = {**rec, "run_id": run_id}
            if rec["step"] == "start":
                rec["artifacts"] = {**rec["artifacts"], "own": own}
            ds.records.write_attempt(rec)
            for stream in ("stdout", "stderr"):
                ds.objects.put(ds.records.log_key("GcFlow", run_id, rec["step"], rec["task_id"], rec["attempt"],
                                                  stream), b"log line\n")
        ds.records.write_run_end("GcFlow", run_id, tpl["end"])
    from headwater.meta import open_index

    with open_index(ds.root, records=ds.records):  # a store's runs keep its index: not part of gc's time
        pass
    return {"build_seconds": round(time.perf_counter() - t, 2)}


def _collect(root: str, runs: str, dry: str) -> dict:
    from headwater.meta import open_index
    from headwater.store import Datastore
    from headwater.store.gc import Retention, collect

    ds = Datastore(root)
    keep = int(runs) // 2
    t = time.perf_counter()
    if dry == "1":
        the_plan, _ = collect(ds.objects, Retention(keep_last=keep), dry_run=True)
        return {"seconds": time.perf_counter() - t, "removed": len(the_plan.removed)}
    with open_index(ds.root, records=ds.records) as index:
        the_plan, result = collect(ds.objects, Retention(keep_last=keep), index=index)
    assert result is not None
    return {"seconds": time.perf_counter() - t, "removed": result.runs_removed, "blobs": result.blobs_deleted,
            "blob_bytes": result.blob_bytes, "records": result.records_deleted}


def _in_child(env: dict, fn: str, *args: str) -> dict:
    code = (f"import json, sys; sys.path.insert(0, {os.path.dirname(__file__)!r}); import bench_gc as b; "
            f"print(json.dumps(b.{fn}(*sys.argv[1:])))")
    out = subprocess.run([sys.executable, "-c", code, *args], check=True, stdout=subprocess.PIPE, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--stores", default="local,s3")
    ap.add_argument("--json", dest="json_out", default=None, help="also write the results to this file")
    args = ap.parse_args()
    results = {"bench": "gc", "runs": args.runs, "keep_last": args.runs // 2, "cpus": os.cpu_count(), "stores": {}}
    with tempfile.TemporaryDirectory(prefix="hw-bench-gc-") as work:
        templates = _templates(work)
        tfile = os.path.join(work, "templates.json")
        for tpl in templates:
            tpl["blobs"] = {k: v.hex() for k, v in tpl["blobs"].items()}
        Path(tfile).write_text(json.dumps(templates))
        server = None
        for kind in args.stores.split(","):
            env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
            env["HEADWATER_HOME"] = os.path.join(work, f"home-{kind}")
            times, dries, last = [], [], {}
            for n in range(args.repeat):
                if kind == "s3":
                    if server is None:
                        sys.path.insert(0, str(REPO / "tests"))
                        from s3server import start_s3_server

                        server = start_s3_server()
                    env.update(server.env())
                    root = f"s3://{server.new_bucket()}/bench"
                else:
                    root = os.path.join(work, f"local-{n}", ".headwater")
                built = _in_child(env, "_build", root, tfile, str(args.runs))
                dries.append(_in_child(env, "_collect", root, str(args.runs), "1")["seconds"])
                last = _in_child(env, "_collect", root, str(args.runs), "0")
                times.append(last["seconds"])
                print(f"{kind}: built {args.runs} runs in {built['build_seconds']} s; dry run {dries[-1]:.2f} s; "
                      f"gc {times[-1]:.2f} s: removed {last['removed']} runs, {last['blobs']} blobs, "
                      f"{last['records']} records and logs", flush=True)
            results["stores"][kind] = {"gc_seconds": [round(t, 3) for t in times],
                                       "dry_run_seconds": [round(t, 3) for t in dries],
                                       "removed_runs": last["removed"], "deleted_blobs": last["blobs"],
                                       "deleted_records": last["records"]}
        if server is not None:
            server.stop()
    print(json.dumps(results))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
