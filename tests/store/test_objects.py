"""Contract suite for ObjectStore implementations (add S3 to STORES when it lands)."""

from __future__ import annotations

import os
import threading

import pytest

from headwater.store.objects import LocalObjectStore, ObjectStore, file_id

STORES = ["local"]


@pytest.fixture
def store(request: pytest.FixtureRequest, tmp_path) -> ObjectStore:
    if request.param == "local":
        return LocalObjectStore(tmp_path / "root")
    raise AssertionError(f"unknown store {request.param}")


#: Applied to every contract test: runs it once per implementation.
contract = pytest.mark.parametrize("store", STORES, indirect=True)


def _temp_files(store: ObjectStore) -> list[str]:
    return store.list_dir("tmp")


@contract
def test_put_get_exists(store: ObjectStore) -> None:
    assert not store.exists("a/b/c")
    assert store.put("a/b/c", b"hello") is True
    assert store.exists("a/b/c")
    assert store.get("a/b/c") == b"hello"
    with open(store.local_path("a/b/c"), "rb") as f:
        assert f.read() == b"hello"


@contract
def test_put_parts_and_views(store: ObjectStore) -> None:
    big = bytearray(os.urandom(3 << 20))
    assert store.put("k", [b"head", memoryview(big), memoryview(b"tail")])
    assert store.get("k") == b"head" + big + b"tail"
    assert store.put("e", b"")
    assert store.get("e") == b""


@contract
def test_put_is_create_only(store: ObjectStore) -> None:
    assert store.put("x", b"first")
    assert store.put("x", b"second") is False
    assert store.get("x") == b"first"
    assert _temp_files(store) == []


@contract
def test_missing_keys(store: ObjectStore) -> None:
    with pytest.raises(KeyError, match="nope"):
        store.get("nope")
    with pytest.raises(KeyError, match="no/such"):
        store.local_path("no/such")
    assert store.list_dir("nothing/here") == []
    store.delete("nothing")  # a missing key is not an error


@contract
def test_list_dir(store: ObjectStore) -> None:
    for key in ("d/b", "d/a", "d/sub/x", "d/sub/y", "other"):
        store.put(key, b"1")
    assert store.list_dir("d") == ["a", "b", "sub"]
    assert store.list_dir("d/") == ["a", "b", "sub"]
    assert store.list_dir("d/sub") == ["x", "y"]


@contract
def test_root_exists_once_written(store: ObjectStore) -> None:
    assert store.root_exists() is False  # reading never creates a store
    assert store.list_dir("") == []
    store.put("runs/F/1/run.json", b"{}")
    assert store.root_exists() is True
    assert store.list_dir("") == ["runs"]


def test_root_exists_default_asks_for_any_object() -> None:
    from memstore import MemoryObjectStore

    store = MemoryObjectStore()
    assert store.root_exists() is False
    store.put("a/b", b"1")
    assert store.root_exists() is True
    store.delete("a/b")
    assert store.root_exists() is False


@contract
def test_delete(store: ObjectStore) -> None:
    store.put("a/x", b"1")
    store.delete("a/x")
    assert not store.exists("a/x")
    assert store.put("a/x", b"2")  # the key can be written again
    assert store.get("a/x") == b"2"


@contract
def test_open_writer_publishes_on_clean_exit(store: ObjectStore) -> None:
    with store.open_writer("blobs/w") as f:
        f.write(b"abc")
        f.write(memoryview(b"def"))
        assert not store.exists("blobs/w")  # invisible until the writer closes
    assert store.get("blobs/w") == b"abcdef"
    assert _temp_files(store) == []


@contract
def test_open_writer_exception_leaves_nothing(store: ObjectStore) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        with store.open_writer("blobs/w") as f:
            f.write(b"partial")
            raise RuntimeError("boom")
    assert not store.exists("blobs/w")
    assert _temp_files(store) == []


@contract
def test_open_writer_keeps_existing(store: ObjectStore) -> None:
    store.put("k", b"old")
    with store.open_writer("k") as f:
        f.write(b"new")
    assert store.get("k") == b"old"
    assert _temp_files(store) == []


@contract
def test_writer_is_seekable(store: ObjectStore) -> None:
    with store.open_writer("s") as f:
        f.write(b"xxxxworld")
        f.seek(0)
        f.write(b"hell")
        f.seek(0, os.SEEK_END)
        f.write(b"!")
    assert store.get("s") == b"hellworld!"


@contract
def test_recreates_directories_removed_behind_its_back(store: ObjectStore) -> None:
    store.put("gone/a", b"1")
    store.delete("gone/a")
    if isinstance(store, LocalObjectStore):
        os.rmdir(store.path("gone"))
    assert store.put("gone/b", b"2")
    assert store.get("gone/b") == b"2"


@contract
def test_rejects_escaping_keys(store: ObjectStore) -> None:
    with pytest.raises(ValueError, match="may not contain"):
        store.put("../evil", b"x")
    with pytest.raises(ValueError, match="keys are relative"):
        store.get("/etc/passwd")


def test_local_paths(tmp_path) -> None:
    s = LocalObjectStore(tmp_path)
    assert s.url == f"local:{tmp_path}"
    assert s.path("a/b") == f"{tmp_path}/a/b"
    assert not os.path.exists(s.path("a/b"))


@contract
def test_survives_removal_of_its_temp_dir(store: ObjectStore) -> None:
    store.put("a", b"1")
    with store.open_writer("z") as f:
        f.write(b"0")
    if isinstance(store, LocalObjectStore):
        os.rmdir(store.path("tmp"))
    assert store.put("b", b"2")
    with store.open_writer("c") as f:
        f.write(b"3")
    assert [store.get(k) for k in "abc"] == [b"1", b"2", b"3"]


@contract
def test_concurrent_writers_of_one_key(store: ObjectStore) -> None:
    n = 8
    barrier = threading.Barrier(n)
    results: dict[int, bool] = {}

    def write(i: int) -> None:
        barrier.wait()
        results[i] = store.put("race/key", [b"writer-", str(i).encode()])

    threads = [threading.Thread(target=write, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [i for i, ok in results.items() if ok]
    assert len(winners) == 1
    assert store.get("race/key") == f"writer-{winners[0]}".encode()
    assert _temp_files(store) == []


def test_in_flight_temp_files_are_not_listed(tmp_path) -> None:
    s = LocalObjectStore(tmp_path)
    s.put("d/x.json", b"{}")
    open(s.path("d/.123-abc.tmp"), "wb").close()  # what a writer killed mid-put leaves
    assert s.list_dir("d") == ["x.json"]


def _damaged_then_rewritten(store: LocalObjectStore, key: str) -> tuple:
    """``key`` found damaged, quarantined by another reader, then written again with good
    bytes; returns the damaged file's identity (its file lives on in quarantine/)."""
    store.put(key, b"bad")
    bad = file_id(os.stat(store.local_path(key)))
    assert store.quarantine(key) is True
    store.put(key, b"good")
    return bad


def test_quarantine_moves_only_the_file_found_damaged(tmp_path) -> None:
    store = LocalObjectStore(tmp_path / "root")
    bad = _damaged_then_rewritten(store, "blobs/ab/k")
    assert store.quarantine("blobs/ab/k", only=bad) is False
    assert store.get("blobs/ab/k") == b"good" and len(store.list_dir("quarantine")) == 1
    good = file_id(os.stat(store.local_path("blobs/ab/k")))
    assert store.quarantine("blobs/ab/k", only=good) is True
    assert not store.exists("blobs/ab/k") and len(store.list_dir("quarantine")) == 2
    assert store.quarantine("blobs/ab/k", only=good) is True  # already gone: nothing to do


def test_quarantine_without_the_lock_puts_a_good_file_back(tmp_path, monkeypatch) -> None:
    # A quarantiner that does not take the lock moves the damaged file and a writer
    # stores the good bytes between this quarantine's check and its rename.
    store = LocalObjectStore(tmp_path / "root")
    key = "blobs/ab/k"
    store.put(key, b"bad")
    bad = file_id(os.stat(store.local_path(key)))
    real_rename = os.rename

    def rename_after_a_lockless_quarantine(src: str, dst: str) -> None:
        monkeypatch.setattr(os, "rename", real_rename)
        real_rename(src, f"{tmp_path}/moved-by-the-other")
        store.put(key, b"good")
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rename_after_a_lockless_quarantine)
    assert store.quarantine(key, only=bad) is False
    assert store.get(key) == b"good" and store.list_dir("quarantine") == []


def test_default_quarantine_leaves_what_it_cannot_identify(tmp_path) -> None:
    class Plain(LocalObjectStore):
        quarantine = ObjectStore.quarantine

    store = Plain(tmp_path / "root")
    store.put("a", b"x")
    assert store.quarantine("a", only=(0, 0, 0)) is False and store.get("a") == b"x"
    assert store.quarantine("a") is True and not store.exists("a")
