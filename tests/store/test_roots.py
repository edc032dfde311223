"""Datastore roots: one factory picks the store by the root's URL; local paths are
made absolute there and URLs are kept as given; run ids are reserved through the store."""

from __future__ import annotations

import json

import pytest
from memstore import MemoryObjectStore, serve_mem_scheme

from headwater.exceptions import HeadwaterException
from headwater.store import Datastore, LocalObjectStore, RecordStore, normalize_root
from headwater.store.roots import is_local_root


@pytest.fixture
def mem_scheme(monkeypatch) -> dict[str, MemoryObjectStore]:
    return serve_mem_scheme(monkeypatch)


def test_normalize_root(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert normalize_root("s3://bucket/prefix") == "s3://bucket/prefix"
    assert normalize_root("s3://bucket/prefix/../x") == "s3://bucket/prefix/../x"  # a URL is never a path
    assert normalize_root("rel/store") == f"{tmp_path}/rel/store"
    assert normalize_root(f"file://{tmp_path}/a/../b") == f"{tmp_path}/b"
    assert normalize_root("rel", cwd="/elsewhere") == "/elsewhere/rel"
    assert normalize_root("/abs", cwd="/elsewhere") == "/abs"
    assert normalize_root("s3://b/p", cwd="/elsewhere") == "s3://b/p"
    assert is_local_root("file:///x") and is_local_root("x") and not is_local_root("s3://b")


def test_local_root_is_made_absolute_by_the_factory(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    ds = Datastore("store")
    assert ds.root == f"{tmp_path}/store"
    assert isinstance(ds.objects, LocalObjectStore) and ds.objects.root == ds.root
    assert Datastore(f"file://{tmp_path}/store").root == ds.root


def test_url_root_is_kept_and_served_by_its_plugin(mem_scheme) -> None:
    ds = Datastore("mem://bucket/prefix")
    assert ds.root == "mem://bucket/prefix"
    assert ds.objects is mem_scheme["mem://bucket/prefix"]
    assert not ds.exists()  # reading never creates a store
    ds.ensure_local_root()  # nothing to create for a URL
    assert not ds.exists()
    value = {"a": "x" * 100_000}  # big enough to be a blob, not inline
    ref = ds.content.save(value)
    assert ds.exists()
    assert ds.content.load(ref) == value


def test_unknown_scheme_is_refused(tmp_path) -> None:
    with pytest.raises(HeadwaterException, match=r"No object store handles 'nope://x/y' \(scheme 'nope'\)"):
        Datastore("nope://x/y")


def test_run_id_file_inside_a_local_root_only(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # where a URL taken for a relative path would point
    from headwater.runtime.run_id_file import RunIdFileError, check_run_id_file

    with pytest.raises(RunIdFileError, match=r"--run-id-file .* is inside the datastore file://"):
        check_run_id_file(str(tmp_path / "st" / "id"), option="--run-id-file", datastore_root=f"file://{tmp_path}/st")
    # A URL root holds no local file, even one whose path spells the URL.
    check_run_id_file(str(tmp_path / "s3:" / "b" / "id"), option="--run-id-file", datastore_root="s3://b")


def _run_rec(flow: str) -> dict:
    return {"version": 1, "flow": flow, "run_id": None, "user": "tester", "tags": [], "system_tags": [],
            "created_at": 0.0, "start_step": "start", "end_step": "end", "parameters": []}


def test_run_ids_are_reserved_by_the_run_record(mem_scheme, monkeypatch) -> None:
    from headwater.runtime import run as run_mod

    monkeypatch.setattr(run_mod.time, "time", lambda: 1000.0)  # every run picks the same first id
    ds = Datastore("mem://bucket/runs")
    ids = [run_mod.new_run_id(ds, _run_rec("IdFlow")) for _ in range(3)]
    assert ids == ["1000000000", "1000000001", "1000000002"]
    assert ds.records.runs("IdFlow") == ids
    for rid in ids:
        assert ds.records.read_run("IdFlow", rid)["run_id"] == rid
    store = mem_scheme["mem://bucket/runs"]
    assert json.loads(store.get(RecordStore.run_key("IdFlow", ids[0])))["run_id"] == ids[0]


def test_run_id_fills_in_the_callers_record(tmp_path) -> None:
    from headwater.runtime.run import new_run_id

    ds = Datastore(tmp_path / "store")
    rec = _run_rec("IdFlow")
    rid = new_run_id(ds, rec)
    assert rec["run_id"] == rid
    assert ds.records.read_run("IdFlow", rid) == rec


def test_local_state_about_a_store_is_kept_per_service(tmp_path):
    """The same bucket/prefix on two S3 services (AWS, MinIO) are two stores: their index
    caches and log spools must not be shared."""
    from headwater.config import Settings
    from headwater.meta.remote import cache_dir
    from headwater.store.s3.objects import S3ObjectStore

    aws = S3ObjectStore("s3://data/hw", settings=Settings(datastore_root="s3://data/hw", user="u",
                                                           home=str(tmp_path)))
    minio = S3ObjectStore("s3://data/hw", settings=Settings(datastore_root="s3://data/hw", user="u",
                                                             home=str(tmp_path),
                                                             s3_endpoint_url="http://127.0.0.1:9000"))
    assert aws.url == minio.url and aws.identity != minio.identity
    assert cache_dir(str(tmp_path), aws.identity) != cache_dir(str(tmp_path), minio.identity)
