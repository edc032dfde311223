"""``headwater verify`` on real runs, on the local and the S3 datastore: a clean store
passes, and damaged, truncated or missing blobs are named with every run, step, task and
artifact that uses them; ``--run`` limits the scope; ``--quarantine`` frees the key so a
re-run stores the blob again."""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

from flowrun import USER, run_flow
from headwater.cli.main import cli
from headwater.cli.verify_cmd import progress_line
from headwater.exceptions import DataCorruptionError
from headwater.store import ContentStore, LocalObjectStore
from headwater.store.blobcheck import open_source, verify_source
from headwater.store.content import blob_key
from headwater.store.itemtable import save_item_table
from headwater.store.verify import Progress

FLOW = "store_fault_flow.py"


@dataclass
class Store:
    """A datastore (local directory or S3 prefix) the tests can run flows on and damage."""

    root: str
    env: dict[str, str]
    read: Callable[[str], bytes]
    write: Callable[[str, bytes], None]
    remove: Callable[[str], None]
    keys: Callable[[str], list[str]]

    def run(self, *args: str) -> str:
        r = run_flow(FLOW, "run", *args, root=Path(self.root) if "://" not in self.root else Path("/nonexistent"),
                     env=self.env)
        assert r.returncode == 0, r.output
        (line,) = [ln for ln in r.output.splitlines() if "Workflow starting (run-id" in ln]
        return line.split("run-id ")[1].split(")")[0]

    def verify(self, *args: str) -> Result:
        return CliRunner().invoke(cli, ["verify", *args], env=self.env)

    def report(self, *args: str) -> dict:
        r = self.verify("--json", *args)
        return json.loads(r.stdout)

    def blob(self) -> str:
        (key,) = self.keys("blobs/")
        return key


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    home = str(tmp_path / "home")
    if request.param == "local":
        root = tmp_path / ".headwater"

        def keys(prefix: str) -> list[str]:
            return sorted(str(p.relative_to(root)) for p in (root / prefix).rglob("*") if p.is_file())

        def remove(key: str) -> None:
            (root / key).unlink()

        return Store(str(root), {"HEADWATER_DATASTORE_ROOT": str(root), "HEADWATER_USER": USER,
                                 "HEADWATER_HOME": home},
                     lambda k: (root / k).read_bytes(), lambda k, d: (root / k).write_bytes(d), remove, keys)
    server = request.getfixturevalue("s3_env")
    bucket = server.new_bucket()
    s3 = server.boto3()
    root = f"s3://{bucket}/team"

    def s3_keys(prefix: str) -> list[str]:
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"team/{prefix}").get("Contents", [])
        return sorted(o["Key"][len("team/"):] for o in listed)

    return Store(root, {**server.env(), "HEADWATER_DATASTORE_ROOT": root, "HEADWATER_USER": USER,
                        "HEADWATER_HOME": home},
                 lambda k: s3.get_object(Bucket=bucket, Key=f"team/{k}")["Body"].read(),
                 lambda k, d: s3.put_object(Bucket=bucket, Key=f"team/{k}", Body=d),
                 lambda k: s3.delete_object(Bucket=bucket, Key=f"team/{k}"), s3_keys)


def _flip(store: Store, key: str) -> None:
    data = bytearray(store.read(key))
    data[-1] ^= 0xFF
    store.write(key, bytes(data))


def _uses(problem: dict) -> set[tuple[str, str, str, str | None]]:
    return {(r["run_id"], r["step"], r["task_id"], r["artifact"]) for r in problem["references"]}


def test_a_clean_store_verifies(store: Store) -> None:
    store.run()
    r = store.verify()
    assert r.exit_code == 0, r.output
    assert "No damage." in r.stdout and "1 run, 5 records, 1 blob (" in r.stdout
    report = store.report()
    assert report["ok"] is True and report["problems"] == [] and report["blobs"] == 1
    assert report["bytes"] > 16 << 10 and report["inline_artifacts"] > 0


def test_a_flipped_byte_is_named_with_every_run_step_and_artifact_using_it(store: Store) -> None:
    first, second = store.run(), store.run()  # the same payload: one blob shared by both runs
    key = store.blob()
    _flip(store, key)
    r = store.verify()
    assert r.exit_code == 1, r.output
    content_key = key.rpartition("/")[2]
    assert f"DAMAGED blob {content_key}: its content does not match its key." in r.stdout
    assert f"used by StoreFaultFlow/{first}/start/1 artifact 'payload'" in r.stdout
    assert f"used by StoreFaultFlow/{second}/end/3 artifact 'payload'" in r.stdout
    report = store.report()
    (problem,) = report["problems"]
    assert problem["problem"] == "damaged" and problem["object"] == key and problem["quarantined"] is False
    assert _uses(problem) == {(run, step, task, "payload") for run in (first, second)
                              for step, task in (("start", "1"), ("sleep", "2"), ("end", "3"))}
    assert report["blobs"] == 1  # checked once, though six tasks of two runs use it
    assert key in store.keys("blobs/")  # without --quarantine nothing moves


def test_a_deleted_blob_is_reported_missing(store: Store) -> None:
    run_id = store.run()
    key = store.blob()
    store.remove(key)
    r = store.verify()
    assert r.exit_code == 1
    assert f"MISSING blob {key.rpartition('/')[2]}: the store does not hold it." in r.stdout
    (problem,) = store.report()["problems"]
    assert problem["problem"] == "missing" and (run_id, "start", "1", "payload") in _uses(problem)


def test_a_truncated_blob_is_damaged(store: Store) -> None:
    store.run()
    key = store.blob()
    store.write(key, store.read(key)[: 8 << 10])
    r = store.verify()
    assert r.exit_code == 1
    assert "the file is truncated" in r.stdout
    assert store.report()["problems"][0]["problem"] == "damaged"


def test_run_limits_the_scope(store: Store) -> None:
    damaged = store.run("--kib", "16")
    clean = store.run("--kib", "32")
    (blob16,) = [k for k in store.keys("blobs/") if len(store.read(k)) < 24 << 10]
    _flip(store, blob16)
    ok = store.report("--run", f"StoreFaultFlow/{clean}")
    assert ok["ok"] is True and ok["runs"] == 1 and ok["blobs"] == 1
    bad = store.verify("--run", f"StoreFaultFlow/{damaged}")
    assert bad.exit_code == 1 and f"StoreFaultFlow/{damaged}/start/1" in bad.stdout
    assert f"StoreFaultFlow/{clean}/" not in bad.stdout
    assert store.verify("--flow", "StoreFaultFlow").exit_code == 1


def test_quarantine_moves_the_blob_and_a_rerun_stores_it_again(store: Store) -> None:
    store.run()
    key = store.blob()
    _flip(store, key)
    r = store.verify("--quarantine")
    assert r.exit_code == 1
    assert "moved to quarantine/: the next run that saves this value stores it again." in r.stdout
    assert store.keys("blobs/") == [] and len(store.keys("quarantine/")) == 1
    assert store.report()["problems"][0]["problem"] == "missing"
    store.run()  # saves the same payload: the key is free, so it is written again
    r = store.verify()
    assert r.exit_code == 0, r.output
    assert store.keys("blobs/") == [key]


def test_a_damaged_inline_artifact_is_named_with_its_record(tmp_path: Path) -> None:
    root = tmp_path / ".headwater"
    r = run_flow(FLOW, "run", root=root)
    assert r.returncode == 0, r.output
    (record,) = (root / "runs" / "StoreFaultFlow").glob("*/start/1/0.json")
    rec = json.loads(record.read_bytes())
    rec["artifacts"]["kib"]["inline"] = rec["artifacts"]["nap"]["inline"]  # valid base64, wrong bytes
    record.write_text(json.dumps(rec))
    out = CliRunner().invoke(cli, ["verify", "--json"], env={"HEADWATER_DATASTORE_ROOT": str(root),
                                                             "HEADWATER_USER": USER})
    assert out.exit_code == 1
    (problem,) = json.loads(out.stdout)["problems"]
    assert problem["object"] == str(record.relative_to(root)) and problem["key"] == rec["artifacts"]["kib"]["key"]
    assert problem["reason"] == "an inline artifact in its record does not match its key"
    assert [ref["artifact"] for ref in problem["references"]] == ["kib"]


def test_unknown_flow_or_run_is_a_user_error(store: Store) -> None:
    run_id = store.run()
    r = store.verify("--flow", "NoSuchFlow")
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert "Flow 'NoSuchFlow' has no runs" in r.stderr and "Hint: Flows in this datastore: StoreFaultFlow." in r.stderr
    r = store.verify("--run", "StoreFaultFlow/123")
    assert r.exit_code == 1 and "Run 'StoreFaultFlow/123' does not exist" in r.stderr and run_id in r.stderr
    r = store.verify("--run", "StoreFaultFlow")
    assert r.exit_code == 1 and "--run expects FLOW/RUN_ID, got 'StoreFaultFlow'" in r.stderr


def test_no_datastore_is_a_user_error(tmp_path: Path) -> None:
    r = CliRunner().invoke(cli, ["verify"], env={"HEADWATER_DATASTORE_ROOT": str(tmp_path / "none"),
                                                 "HEADWATER_USER": USER})
    assert r.exit_code == 1 and "There is no datastore at" in r.stderr


def test_progress_line() -> None:
    p = Progress(blobs_done=3, blobs_total=10, bytes_done=3 << 30, bytes_total=10 << 30)
    assert progress_line(p).startswith("verify: 3/10 blobs, 3.0 GiB of 10.0 GiB, ")
    assert progress_line(p).endswith(" GB/s")


# -- blobs checked directly: compressed parts and item tables ------------------------------------


@pytest.fixture
def content(tmp_path: Path) -> ContentStore:
    return ContentStore(LocalObjectStore(tmp_path / "store"))


def _check(content: ContentStore, key: str) -> int:
    source = open_source(content.objects, blob_key(key))
    try:
        return verify_source(source, key)
    finally:
        source.close()


def test_a_compressed_multi_frame_blob_verifies_and_its_damage_is_found(content: ContentStore,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from headwater.store import codec

    monkeypatch.setattr(codec, "_choose_frames", lambda part, frame: True)  # every frame, not by timing
    arr = np.tile(np.arange(1000, dtype=np.float64), 2000)  # 16 MB, compressible: several zstd frames
    ref = content.save(arr)
    header = content.objects.get_range(blob_key(ref["key"]), 0, 4096)
    assert b'"zstd",[[' in header  # really compressed in frames
    assert _check(content, ref["key"]) == ref["size"]
    path = content.objects.path(blob_key(ref["key"]))
    data = bytearray(Path(path).read_bytes())
    data[len(data) // 2] ^= 0xFF
    Path(path).write_bytes(bytes(data))
    with pytest.raises(DataCorruptionError, match="(does not decode|does not match its key)"):
        _check(content, ref["key"])


def test_a_foreach_item_table_verifies_and_its_damage_is_found(content: ContentStore) -> None:
    items = [random.Random(i).randbytes(3000) for i in range(50)]
    ref = content.save(items)
    table = save_item_table(content, items, list_key=ref["key"])
    assert table is not None
    assert _check(content, table["key"]) == table["size"]
    path = content.objects.path(blob_key(table["key"]))
    data = bytearray(Path(path).read_bytes())
    data[-10] ^= 0xFF
    Path(path).write_bytes(bytes(data))
    with pytest.raises(DataCorruptionError, match="an item does not match its digest"):
        _check(content, table["key"])
    os.truncate(path, 100)
    with pytest.raises(DataCorruptionError, match="truncated"):
        _check(content, table["key"])


def test_a_store_without_ranged_reads_is_checked_through_local_copies() -> None:
    from headwater.store import RecordStore
    from headwater.store.verify import Problem, Scope, verify
    from memstore import MemoryObjectStore

    objects = MemoryObjectStore()
    ref = ContentStore(objects).save(np.arange(100_000, dtype=np.float64))
    records = RecordStore(objects)
    records.write_run({"flow": "F", "run_id": "1"})
    records.write_attempt({"flow": "F", "run_id": "1", "step": "start", "task_id": "1", "attempt": 2,
                           "artifacts": {"arr": ref}})
    assert verify(objects).ok
    bkey = blob_key(ref["key"])
    objects.objects[bkey] = objects.objects[bkey][:-1] + b"\0"
    report = verify(objects, Scope.parse(runs=["F/1"]))
    (finding,) = report.findings
    assert finding.problem is Problem.DAMAGED and finding.object == bkey
    assert [r.describe() for r in finding.references] == ["F/1/start/1 (attempt 2) artifact 'arr'"]
    report = verify(objects, quarantine=True)
    assert report.findings[0].quarantined and bkey not in objects.objects


def test_a_blob_shared_by_two_runs_is_read_once_on_s3(s3_env, tmp_path: Path) -> None:
    from s3faults import FaultProxy

    bucket = s3_env.new_bucket()
    root = f"s3://{bucket}/team"
    env = {**s3_env.env(), "HEADWATER_DATASTORE_ROOT": root, "HEADWATER_USER": USER,
           "HEADWATER_HOME": str(tmp_path / "home")}
    proxy = FaultProxy(s3_env.url).start()
    try:
        via_proxy = {**env, "HEADWATER_S3_ENDPOINT_URL": proxy.url}
        gets = []
        for _ in range(2):
            r = run_flow(FLOW, "run", root=Path("/nonexistent"), env=env)
            assert r.returncode == 0, r.output
            before = proxy.count("GET", "/blobs/")
            out = CliRunner().invoke(cli, ["verify", "--json"], env=via_proxy)
            assert out.exit_code == 0, out.output
            assert json.loads(out.stdout)["runs"] == len(gets) + 1
            gets.append(proxy.count("GET", "/blobs/") - before)
    finally:
        proxy.stop()
    assert gets[0] > 0 and gets[1] == gets[0]  # the second run names the same blob: no more reads
