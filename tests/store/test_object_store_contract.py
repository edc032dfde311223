"""The ObjectStore contract: one suite run against every implementation (a local
directory, the in-memory test store, and S3 on the session's moto server)."""

from __future__ import annotations

import multiprocessing
import os
import threading

import pytest

from headwater.store.objects import LocalObjectStore, ObjectStore

STORES = ["local", "memory", "s3"]
#: A size above every store's single-request limit (S3: one PUT up to 8 MiB), so large
#: objects take the multipart path.
LARGE = 20 << 20


@pytest.fixture
def store(request: pytest.FixtureRequest, tmp_path, monkeypatch: pytest.MonkeyPatch) -> ObjectStore:
    if request.param == "local":
        return LocalObjectStore(tmp_path / "root")
    if request.param == "memory":
        from memstore import MemoryObjectStore

        return MemoryObjectStore()
    if request.param == "s3":
        bucket = request.getfixturevalue("s3_bucket")
        monkeypatch.setenv("HEADWATER_HOME", str(tmp_path / "home"))
        from headwater.store import open_object_store

        return open_object_store(f"s3://{bucket}/some/prefix")
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


def _pattern(n: int, seed: int) -> bytearray:
    """``n`` bytes that differ at every MiB (a misplaced part shows), cheap to make."""
    block = bytearray(os.urandom(1 << 20))
    out = bytearray(n)
    for i in range(0, n, 1 << 20):
        block[:8] = (i ^ seed).to_bytes(8, "little")
        out[i : i + (1 << 20)] = block[: min(1 << 20, n - i)]
    return out


@contract
@pytest.mark.parametrize("key", ["blobs/ab/large", "records/large"])
def test_large_multi_buffer_put(store: ObjectStore, key: str) -> None:
    a, b = _pattern(LARGE, 1), _pattern(LARGE // 3 + 17, 2)
    parts = [b"head", memoryview(a), memoryview(b"")[0:0], memoryview(b)]
    assert store.put(key, parts) is True
    assert store.put(key, [memoryview(a), memoryview(b)]) is False  # create-only, as for small objects
    whole = b"head" + a + b
    assert store.get(key) == whole
    with open(store.local_path(key), "rb") as f:
        assert f.read() == whole
    assert _temp_files(store) == []


@contract
def test_put_takes_typed_buffers(store: ObjectStore) -> None:
    import array

    floats = array.array("d", [1.5] * 1000)
    assert store.put("typed", [memoryview(floats)])
    assert store.get("typed") == floats.tobytes()


@contract
def test_open_writer_large(store: ObjectStore) -> None:
    data = _pattern(LARGE, 3)
    with store.open_writer("blobs/cd/w") as f:
        for i in range(0, LARGE, 3 << 20):
            f.write(memoryview(data)[i : i + (3 << 20)])
    with open(store.local_path("blobs/cd/w"), "rb") as f:
        assert f.read() == data
    with store.open_writer("blobs/cd/w") as f:
        f.write(b"other bytes")
    assert store.get_range("blobs/cd/w", LARGE - 4, 4) == data[-4:]


@contract
def test_concurrent_large_writers_of_one_key(store: ObjectStore) -> None:
    n = 3
    payloads = [_pattern(LARGE // 2, i) for i in range(n)]
    barrier = threading.Barrier(n)
    results: dict[int, bool] = {}

    def write(i: int) -> None:
        barrier.wait()
        results[i] = store.put("race/large", [memoryview(payloads[i])])

    threads = [threading.Thread(target=write, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [i for i, ok in results.items() if ok]
    assert len(winners) == 1
    assert store.get("race/large") == payloads[winners[0]]
    assert _temp_files(store) == []


def _put_in_child(store: ObjectStore, i: int, out: "multiprocessing.Queue[tuple[int, bool]]") -> None:
    out.put((i, store.put("race/proc", f"process-{i}".encode())))


@contract
def test_concurrent_writers_from_processes(store: ObjectStore) -> None:
    from memstore import MemoryObjectStore

    if isinstance(store, MemoryObjectStore):
        pytest.skip("the in-memory store lives in one process")
    store.put("warm", b"the parent used the store before forking")
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    procs = [ctx.Process(target=_put_in_child, args=(store, i, out)) for i in range(4)]
    for p in procs:
        p.start()
    results = dict(out.get(timeout=60) for _ in procs)
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    winners = [i for i, ok in results.items() if ok]
    assert len(winners) == 1
    assert store.get("race/proc") == f"process-{winners[0]}".encode()


@contract
def test_iter_keys(store: ObjectStore) -> None:
    keys = ["runs/F/10/a", "runs/F/2/b", "runs/F/2/c/d", "runs/F-x/1", "runs/G/1", "blobs/aa/k", "top"]
    for k in keys:
        store.put(k, b"1")
    assert list(store.iter_keys("runs/F")) == ["runs/F/10/a", "runs/F/2/b", "runs/F/2/c/d"]
    assert list(store.iter_keys("runs/F/")) == ["runs/F/10/a", "runs/F/2/b", "runs/F/2/c/d"]
    assert list(store.iter_keys("")) == sorted(keys)
    assert list(store.iter_keys("runs", start_after="runs/F/2/b")) == ["runs/F/2/c/d", "runs/G/1"]
    assert list(store.iter_keys("runs/F", start_after="runs/F/10")) == ["runs/F/10/a", "runs/F/2/b", "runs/F/2/c/d"]
    assert list(store.iter_keys("nothing")) == []


@contract
def test_iter_keys_lists_more_than_one_page(store: ObjectStore) -> None:
    keys = [f"many/{i:05d}" for i in range(1100)]  # S3 answers 1,000 keys per request
    for k in keys:
        store.put(k, b"")
    assert list(store.iter_keys("many")) == keys
    assert list(store.iter_keys("many", start_after="many/01049")) == keys[1050:]
    assert store.list_dir("many") == [k.rpartition("/")[2] for k in keys]


@contract
def test_get_range(store: ObjectStore) -> None:
    store.put("r", b"0123456789")
    assert store.get_range("r", 0, 4) == b"0123"
    assert store.get_range("r", 3, 2) == b"34"
    assert store.get_range("r", 8, 10) == b"89"  # clipped at the end of the object
    assert store.get_range("r", 10, 5) == b""
    assert store.get_range("r", 50, 5) == b""
    assert store.get_range("r", 2, 0) == b""
    with pytest.raises(KeyError, match="absent"):
        store.get_range("absent", 0, 1)
    with pytest.raises(ValueError, match="Invalid byte range"):
        store.get_range("r", -1, 2)


@contract
def test_local_path_after_delete_is_missing(store: ObjectStore) -> None:
    store.put("blobs/ee/k", b"content")
    with open(store.local_path("blobs/ee/k"), "rb") as f:
        assert f.read() == b"content"
    store.delete("blobs/ee/k")
    with pytest.raises(KeyError, match="blobs/ee/k"):
        store.local_path("blobs/ee/k")
    assert store.put("blobs/ee/k", b"content")
    with open(store.local_path("blobs/ee/k"), "rb") as f:
        assert f.read() == b"content"


@contract
def test_iter_sizes_lists_keys_with_their_sizes(store: ObjectStore) -> None:
    store.put("blobs/ab/abc", b"x" * 10)
    store.put("blobs/cd/cde", b"")
    store.put("runs/F/1/_run.json", b"{}")
    assert list(store.iter_sizes("blobs")) == [("blobs/ab/abc", 10), ("blobs/cd/cde", 0)]
    assert dict(store.iter_sizes("")).items() >= {"blobs/ab/abc": 10, "runs/F/1/_run.json": 2}.items()
    assert list(store.iter_sizes("nothing")) == []


@contract
def test_delete_many_removes_every_key_and_ignores_missing_ones(store: ObjectStore) -> None:
    keys = [f"runs/F/1/step/{i}/0.json" for i in range(5)]
    for k in keys:
        store.put(k, b"{}")
    store.put("runs/F/2/_run.json", b"{}")
    store.delete_many([*keys, "runs/F/1/missing"])
    assert [k for k in keys if store.exists(k)] == []
    assert store.list_dir("runs/F") == ["2"]  # no empty directory left to look like a run
    assert store.put(keys[0], b"again") and store.get(keys[0]) == b"again"  # the path is usable again


@contract
def test_iter_stats_lists_sizes_and_write_times(store: ObjectStore) -> None:
    import time

    before = time.time()
    store.put("pins/runs/F/1/abc", b"")
    store.put("runs/F/1/_run.json", b"{}")
    after = time.time()
    stats = list(store.iter_stats("runs"))
    assert [(k, n) for k, n, _ in stats] == [("runs/F/1/_run.json", 2)]
    # A store's clock and ours may round differently (S3: whole seconds), never by more.
    assert all(before - 2 <= mtime <= after + 2 for _, _, mtime in stats)
    assert [k for k, _, _ in store.iter_stats("")] == ["pins/runs/F/1/abc", "runs/F/1/_run.json"]
    assert list(store.iter_stats("nothing")) == []


@contract
def test_open_ranged_makes_the_ranges_asked_for_present(store: ObjectStore) -> None:
    data = os.urandom(3 << 20)
    store.put("big/r", data)
    with store.open_ranged("big/r") as ranged:
        assert ranged.size == len(data)
        ranged.ensure(1 << 20, 5000)
        assert os.pread(ranged.fd, 5000, 1 << 20) == data[1 << 20 : (1 << 20) + 5000]
        ranged.ensure(len(data) - 10, 100)  # clipped at the end of the object
        assert os.pread(ranged.fd, 10, len(data) - 10) == data[-10:]
        ranged.ensure(0, 4096, again=True)  # asked again: fetched anew where that means anything
        assert os.pread(ranged.fd, 4096, 0) == data[:4096]
        assert ranged.read(7, 9) == data[7:16] and ranged.read(len(data) - 3, 10) == data[-3:]
    with pytest.raises(KeyError):
        store.open_ranged("big/absent")
