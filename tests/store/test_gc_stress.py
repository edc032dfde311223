"""gc in a loop while real flows run, on the local and the S3 datastore: the flows store the
same shared arrays that the runs gc removes under them (dedup hits on blobs being swept).
Afterwards every run succeeded, the kept runs' artifacts load, and verify passes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from flowrun import FLOWS, USER

WORKERS = 3
RUNS_EACH = 3


@pytest.fixture(params=["local", "s3"])
def env(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    out = {"HEADWATER_USER": USER, "HEADWATER_HOME": str(tmp_path / "home"), "HEADWATER_LAUNCHER": "fork"}
    if request.param == "local":
        out["HEADWATER_DATASTORE_ROOT"] = str(tmp_path / ".headwater")
    else:
        server = request.getfixturevalue("s3_env")
        out.update(server.env())
        out["HEADWATER_DATASTORE_ROOT"] = f"s3://{server.new_bucket()}/stress"
    for k, v in out.items():
        monkeypatch.setenv(k, v)
    return out


def _worker(w: int, env: dict[str, str], tmp: Path) -> subprocess.Popen:
    """A shell loop running GcFlow RUNS_EACH times; the last run is tagged keep, the others are
    fair game for gc as soon as they end. Every run stores one of the shared arrays."""
    flow = FLOWS / "gc_flow.py"
    runs = []
    for i in range(RUNS_EACH):
        tag = "--tag keep" if i == RUNS_EACH - 1 else ""
        runs.append(f"{sys.executable} {flow} run --pick {(w + i) % 4} --salt {100 * w + i} --nap 0.05 {tag} "
                    f"|| echo FAILED {i}")
    full = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    full.update(env)
    script = f"( {'; '.join(runs)} ) > {tmp / f'worker{w}.log'} 2>&1"
    return subprocess.Popen(["bash", "-c", script], env=full, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_gc_in_a_loop_while_flows_run(env: dict[str, str], tmp_path: Path) -> None:
    from headwater import Flow, namespace
    from headwater.cli.main import cli
    from headwater.meta import open_index
    from headwater.store import Datastore
    from headwater.store.gc import Retention, plan
    from headwater.store.gc import _sweep as sweep

    root = env["HEADWATER_DATASTORE_ROOT"]
    for pick in range(4):  # old runs holding every shared array: removed by the first gc
        r = subprocess.run([sys.executable, str(FLOWS / "gc_flow.py"), "run", "--pick", str(pick), "--salt", "0"],
                           env={**{k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}, **env},
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
    ds = Datastore(root)
    workers = [_worker(w, env, tmp_path) for w in range(WORKERS)]
    rounds = removed = spared = 0
    try:
        while any(p.poll() is None for p in workers) or rounds < 2:
            with open_index(root, records=ds.records) as index:
                result = sweep(ds.objects, plan(ds.objects, Retention(keep_tags=("keep",))), index=index)
            rounds += 1
            removed += result.runs_removed
            spared += result.blobs_spared
            assert rounds < 10_000
    finally:
        for p in workers:
            p.wait(timeout=300)
    logs = [(tmp_path / f"worker{w}.log").read_text() for w in range(WORKERS)]
    for text in logs:
        assert "FAILED" not in text, text
        assert text.count("Done!") == RUNS_EACH, text
    assert rounds >= 2 and removed >= 4 + WORKERS * (RUNS_EACH - 1) - 1, (rounds, removed)
    with open_index(root, records=ds.records) as index:  # the stragglers that ended last
        sweep(ds.objects, plan(ds.objects, Retention(keep_tags=("keep",))), index=index)
    namespace(None)
    runs = list(Flow("GcFlow"))
    assert len(runs) == WORKERS and all(r.successful for r in runs)  # the tagged last run of each worker
    for run in runs:
        data = run["end"].task.data
        np.testing.assert_array_equal(data.shared, np.arange(16384, dtype=np.float64) * (data.pick + 1))
        np.testing.assert_array_equal(data.own, np.full(8192, data.salt, dtype=np.int64))
    verified = CliRunner().invoke(cli, ["verify"], env=env)
    assert verified.exit_code == 0, verified.output
    assert "No damage." in verified.stdout
