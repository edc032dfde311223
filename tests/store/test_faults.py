"""Store faults through real runs (issue 8): a damaged blob heals by re-running, a
replaced index never shows wrong status, damaged records are named, dead writers'
temp files are cleaned, and a full disk ends in one clear message."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flowrun import USER, run_flow

FLOW = "store_fault_flow.py"


def _headwater(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The ``headwater`` command in a subprocess, on the store at ``root``."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    full.update({"HEADWATER_DATASTORE_ROOT": str(root), "HEADWATER_USER": USER, **(env or {})})
    return subprocess.run([sys.executable, "-m", "headwater.cli.main", *args], capture_output=True, text=True,
                          env=full, timeout=120)


def _blob_paths(root: Path) -> list[Path]:
    return sorted(p for p in (root / "blobs").rglob("*") if p.is_file())


def _damage(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def test_corrupt_blob_is_repaired_by_rerunning(tmp_path, use_root) -> None:
    from headwater import Flow
    from headwater.exceptions import DataCorruptionError

    root = tmp_path / ".headwater"
    first = run_flow(FLOW, "run", root=root)
    assert first.returncode == 0, first.output
    (blob,) = _blob_paths(root)
    _damage(blob)
    use_root(root)
    run = Flow("StoreFaultFlow").latest_run
    with pytest.raises(DataCorruptionError, match="Re-run the step that produced this artifact"):
        run["start"].task.data.payload
    # The hint is true: the re-run stores the blob again instead of keeping the damaged one.
    again = run_flow(FLOW, "run", root=root)
    assert again.returncode == 0, again.output
    assert run["start"].task.data.payload == random.Random(0).randbytes(16 << 10)  # the first run is repaired too
    assert len(list((root / "quarantine").iterdir())) == 1


def test_truncated_attempt_record_is_named_damaged_everywhere(tmp_path, use_root) -> None:
    from headwater import Flow

    root = tmp_path / ".headwater"
    first = run_flow(FLOW, "run", root=root)
    assert first.returncode == 0, first.output
    (record,) = root.glob("runs/StoreFaultFlow/*/start/1/0.json")
    record.write_bytes(record.read_bytes()[:100])
    (root / "index.sqlite").unlink()  # the rebuilt index reads the torn record too
    for side in root.glob("index.sqlite-*"):
        side.unlink()
    use_root(root)
    task = Flow("StoreFaultFlow").latest_run["start"].task
    assert not task.successful and not task.finished
    assert "DamagedRecordError" in task.exception.type and "is damaged" in task.exception.message
    with pytest.raises(AttributeError, match=r"attempt 0 cannot be read: The record runs/StoreFaultFlow/.*is damaged"):
        task.data.payload
    dump = run_flow(FLOW, "dump", f"{task.pathspec.split('/', 1)[1]}", root=root)
    assert dump.returncode == 0 and "start/1/0.json in local:" in dump.output and "is damaged" in dump.output
    logs = run_flow(FLOW, "logs", f"{task.pathspec.split('/', 1)[1]}", root=root)
    assert logs.returncode == 0 and "start/1 attempt 0: The record" in logs.stderr, logs.output
    resume = run_flow(FLOW, "resume", root=root)
    assert resume.returncode == 0, resume.output
    assert Flow("StoreFaultFlow").latest_run.data.payload_len == 16384
    reindex = _headwater(root, "reindex")
    assert reindex.returncode == 0 and "1 task attempt records are damaged" in reindex.stdout, reindex.stderr


_WRITER = """
import sys, time
from headwater.store import LocalObjectStore
from headwater.store.tempfiles import owner_stem
store = LocalObjectStore(sys.argv[1])
with store.open_writer("blobs/ab/" + "ab" * 32) as f:
    f.write(b"x" * (1 << 20))
    f.flush()
    beside = f"{store.root}/runs/F/1/s/1/.{owner_stem()}-0123456789ab.tmp"
    import os; os.makedirs(os.path.dirname(beside), exist_ok=True); open(beside, "wb").write(b"{")
    print("ready", flush=True)
    time.sleep(600)
"""


def _start_writer(root: Path) -> subprocess.Popen[str]:
    p = subprocess.Popen([sys.executable, "-c", _WRITER, str(root)], stdout=subprocess.PIPE, text=True,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert p.stdout is not None and p.stdout.readline() == "ready\n"
    return p


def _stop(p: subprocess.Popen[str]) -> None:
    p.kill()
    p.wait()
    assert p.stdout is not None
    p.stdout.close()


def _temp_files(root: Path) -> set[str]:
    return {p.name for p in root.rglob("*") if p.is_file() and (p.parent.name == "tmp" or p.name.endswith(".tmp"))}


def test_temp_files_of_killed_writers_are_removed_and_live_ones_kept(tmp_path) -> None:
    root = tmp_path / ".headwater"
    killed, live = _start_writer(root), _start_writer(root)
    try:
        _stop(killed)
        before = _temp_files(root)
        mine = {n for n in before if n.lstrip(".").startswith(f"{live.pid}.")}
        assert len(before) == 4 and len(mine) == 2
        r = run_flow(FLOW, "run", root=root)  # a run start sweeps tmp/
        assert r.returncode == 0, r.output
        after_run = _temp_files(root)
        assert mine <= after_run and len(after_run) == 3  # the killed writer's tmp/ file is gone
        r = _headwater(root, "reindex")  # reindex also sweeps temp files beside blobs and records
        assert r.returncode == 0 and "Removed 1 temp files" in r.stdout, r.stdout + r.stderr
        assert _temp_files(root) == mine
    finally:
        _stop(live)
    assert "Removed 2 temp files" in _headwater(root, "reindex").stdout
    assert _temp_files(root) == set()


def test_index_deleted_during_a_run_never_shows_wrong_status(tmp_path, use_root) -> None:
    from headwater import Flow

    root = tmp_path / ".headwater"
    assert run_flow(FLOW, "run", root=root).returncode == 0  # an earlier run, known to the index
    use_root(root)
    assert len(list(Flow("StoreFaultFlow"))) == 1  # this process now holds the index open
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    env.update({"HEADWATER_DATASTORE_ROOT": str(root), "HEADWATER_USER": USER})
    from flowrun import FLOWS

    proc = subprocess.Popen([sys.executable, str(FLOWS / FLOW), "run", "--nap", "4"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    while len(list(root.glob("runs/StoreFaultFlow/*/sleep"))) < 2:  # the new run is in its nap
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.02)
    (root / "index.sqlite").unlink()
    mid = _headwater(root, "runs")  # another process mid-run builds a new index from the records
    assert mid.returncode == 0 and "running" in mid.stdout and "successful" in mid.stdout, mid.stdout + mid.stderr
    runs = list(Flow("StoreFaultFlow"))  # this process's reader moves to the new index
    assert len(runs) == 2 and runs[0].finished is False
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    run = Flow("StoreFaultFlow").latest_run  # the same reader, after the run process re-synced
    assert run.successful and run.finished and {s.id for s in run} == {"start", "sleep", "end"}
    rows = _headwater(root, "runs")
    assert rows.returncode == 0 and "failed" not in rows.stdout and rows.stdout.count("successful") == 2, rows.stdout


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB tmpfs: a real file system that fills up (needs root; skipped otherwise)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {r.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=True)


def _fill(disk: Path) -> None:
    with open(disk / "filler", "wb") as f:
        try:
            while True:
                f.write(b"\0" * (64 << 10))
                f.flush()
        except OSError:
            pass


def test_full_disk_ends_in_one_clear_message_and_reads_still_work(small_disk, use_root) -> None:
    from headwater import Flow

    root = small_disk / ".headwater"
    assert run_flow(FLOW, "run", root=root).returncode == 0
    # An artifact larger than the free space: the task fails naming it, nothing is left behind.
    big = run_flow(FLOW, "run", "--kib", "6000", root=root)
    assert big.returncode == 1
    assert ("No space left on the datastore at " f"{root} while saving artifact 'payload' of step 'start' (5.9 MiB)."
            in big.output), big.output
    assert "Traceback" not in big.output
    assert not list((root / "tmp").iterdir()) and len(_blob_paths(root)) == 1
    # A disk with no space at all: every command ends in one clear message, reads keep working.
    (root / "index.sqlite").unlink()  # a reader must even build the index with no space (in memory)
    _fill(small_disk)
    full = run_flow(FLOW, "run", root=root)
    assert full.returncode == 1 and "No space left on the datastore at" in full.output, full.output
    assert "Traceback" not in full.output
    rows = _headwater(root, "runs")
    assert rows.returncode == 0 and rows.stdout.count("StoreFaultFlow") == 2, rows.stdout + rows.stderr
    use_root(root)
    runs = list(Flow("StoreFaultFlow"))
    assert [r.successful for r in runs] == [False, True]
    assert runs[1].data.payload_len == 16 << 10
    dump = run_flow(FLOW, "dump", f"{runs[1].id}/end", root=root)
    assert dump.returncode == 0 and "payload_len" in dump.output, dump.output
    again = _headwater(root, "reindex")
    assert again.returncode == 1 and "while saving the rebuilt index (index.sqlite)" in again.stderr + again.stdout
    assert "Traceback" not in again.stderr


def test_index_that_cannot_be_written_on_a_full_disk_is_dropped_not_left_stale(small_disk) -> None:
    from headwater.meta.index import Index
    from headwater.store import Datastore

    ds = Datastore(small_disk / ".headwater")
    rec = {"flow": "F", "run_id": "1", "created_at": 1.0, "user": USER}
    ds.records.write_run(rec)
    idx = Index(ds.root, records=ds.records)
    idx.add_run(rec)
    _fill(small_disk)
    rows = [{"flow": "F", "run_id": "1", "step": "s", "task_id": str(i), "attempt": 0, "status": "running",
             "started_at": 1.0, "finished_at": None, "pad": "x" * 100} for i in range(20_000)]
    idx.upsert_attempts(rows)  # more than the disk takes: no error, the run goes on
    assert idx.in_memory and not os.path.exists(idx.path)  # no stale file left to show wrong status
    assert len(idx.tasks("F", "1", "s")) == 20_000
    reader = Index(ds.root, records=ds.records)  # built from the records (in a file if space allows)
    assert [r.run_id for r in reader.runs("F")] == ["1"]
    idx.close()
    reader.close()
