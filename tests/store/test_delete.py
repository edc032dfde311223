"""``headwater delete FLOW/RUN``: a run's records, logs, pins and index rows go, and the blobs
that nothing else names; shared blobs stay; a run in progress is refused. Local and S3."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from flowrun import FLOWS
from gcstores import GcStore, artifact_values, build_master, set_env


@pytest.fixture(scope="session")
def small_master(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    root = tmp_path_factory.mktemp("delete-master") / ".headwater"
    return root, build_master(root, n=6)


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, small_master: tuple[Path, list[str]], tmp_path: Path,
          monkeypatch: pytest.MonkeyPatch) -> GcStore:
    server = request.getfixturevalue("s3_server") if request.param == "s3" else None
    s = GcStore.copy_of(small_master[0], small_master[1], request.param, tmp_path, server)
    set_env(monkeypatch, s)
    return s


def test_delete_removes_the_run_and_only_the_blobs_nothing_else_names(store: GcStore) -> None:
    from headwater import Flow, Run, namespace
    from headwater.exceptions import HeadwaterNotFound

    ids = store.ids
    victim = ids[1]  # shares array 1 with run 5; its own array is its alone
    refs = store.refs_by_run()
    own = refs[("GcFlow", victim)] - set().union(*(v for k, v in refs.items() if k != ("GcFlow", victim)))
    shared = refs[("GcFlow", victim)] - own
    assert len(own) == 1 and len(shared) == 1
    sizes = store.blob_sizes()
    assert victim in store.cli("runs", "--all").stdout  # the index knows it before

    dry = store.cli("delete", f"GcFlow/{victim}", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.stdout)["blob_bytes"] == sizes[next(iter(own))]
    assert victim in store.run_ids()

    r = store.cli("delete", f"GcFlow/{victim}")
    assert r.exit_code == 0, r.output
    assert f"removed GcFlow/{victim}" in r.stdout and "Removed 1 run of " in r.stdout
    assert store.sizes(f"runs/GcFlow/{victim}/") == {}
    assert not any(k.startswith(f"pins/runs/GcFlow/{victim}/") for k in store.sizes("pins/"))
    blobs = store.blob_sizes()
    assert not own & set(blobs) and shared <= set(blobs)
    assert set(blobs) == set(sizes) - own  # a delete frees nothing but the run's own blobs
    listed = store.cli("runs", "--all")
    assert listed.exit_code == 0 and victim not in listed.stdout and ids[0] in listed.stdout
    namespace(None)
    assert victim not in {r.id for r in Flow("GcFlow")}
    with pytest.raises(HeadwaterNotFound, match=victim):
        Run(f"GcFlow/{victim}")
    np.testing.assert_array_equal(Run(f"GcFlow/{ids[5]}")["start"].task.data.shared, artifact_values(5)["shared"])
    assert store.cli("verify").exit_code == 0


def test_delete_several_runs_at_once(store: GcStore) -> None:
    ids = store.ids
    before = store.blob_sizes()
    assert len(before) == 4 + 6 + 1  # four shared arrays, six of their own, the other flow's payload
    kept = set(store.all_runs()) - {("GcFlow", ids[0]), ("GcFlow", ids[4])}
    gone, _ = store.expected_freed(kept)
    r = store.cli("delete", f"GcFlow/{ids[0]}", f"GcFlow/{ids[4]}", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["result"]["runs_removed"] == 2
    assert store.run_ids() == set(ids) - {ids[0], ids[4]}
    # Runs 0 and 4 shared array 0 with nobody else: it is gone, with their own arrays.
    assert len(gone) == 3 and set(store.blob_sizes()) == set(before) - gone


@pytest.mark.parametrize("spec, message", [
    ("GcFlow/123", "Run 'GcFlow/123' does not exist in the datastore"),
    ("GcFlow", "delete expects FLOW/RUN_ID, got 'GcFlow'."),
    ("NoFlow/1", "Run 'NoFlow/1' does not exist in the datastore"),
])
def test_delete_errors(store: GcStore, spec: str, message: str) -> None:
    before = store.sizes()
    r = store.cli("delete", spec)
    assert r.exit_code == 1 and message in r.output, r.output
    assert store.sizes() == before


def test_a_run_in_progress_is_refused_and_a_killed_one_can_go(store: GcStore) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    env.update(store.env)
    env["HEADWATER_LAUNCHER"] = "fork"
    p = subprocess.Popen([sys.executable, str(FLOWS / "gc_flow.py"), "run", "--nap", "60", "--salt", "99"],
                         env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    try:
        old = store.run_ids()
        deadline = time.monotonic() + 60
        while not any(k.endswith("/start/1/0.json") for k in store.sizes("runs/GcFlow/")
                      if k.split("/")[2] not in old):  # start committed: the run naps in end
            assert p.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        (live,) = store.run_ids() - old
        r = store.cli("delete", f"GcFlow/{live}")
        assert r.exit_code == 1, r.output
        assert f"Run 'GcFlow/{live}' is in progress (it has no end record" in r.output
        assert live in store.run_ids()
        gc = store.cli("gc", "--keep-newer-than", "0s", "--json")  # keeps nothing, but never a run in progress
        assert gc.exit_code == 0, gc.output
        assert json.loads(gc.stdout)["kept_runs"] == {f"GcFlow/{live}": "in progress"}
        assert store.run_ids() == {live}
    finally:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
    # Killed, but it wrote a moment ago (a pod of it may still be writing): still refused.
    r = store.cli("delete", f"GcFlow/{live}")
    assert r.exit_code == 1 and "wrote less than 60 minutes ago" in r.output, r.output
    # An hour later, with its process gone and nothing written since, it can go.
    from headwater.meta.liveness import run_is_dead
    from headwater.store import open_object_store
    from headwater.store.gc import IDLE_SECONDS, Retention, collect

    later = time.time() + IDLE_SECONDS + 1
    _, result = collect(open_object_store(store.root), Retention(delete=(("GcFlow", live),)), now=later,
                        is_dead=lambda rec: run_is_dead(rec, ended=False))
    assert result is not None and result.runs_removed == 1
    assert store.run_ids() == set()
