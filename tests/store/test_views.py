"""Chunk-keyed blobs and partial reads: a slice of a large array reads (and verifies) only the
chunks it covers, on the local store and on S3; a join loads only the inputs it touches."""

from __future__ import annotations

import json
import os
import struct

import blake3
import numpy as np
import pytest

from flowrun import run_flow
from headwater import Flow
from headwater.exceptions import DataCorruptionError, DataMissingError
from headwater.store import Datastore
from headwater.store.codec import encode, parse_blob_header
from headwater.store.content import ContentStore, blob_key
from headwater.store.keyhash import CHUNK, TREE_MIN, KeyHasher, key_of_digests
from headwater.store.objects import LocalObjectStore

MIB = 1 << 20


@pytest.fixture
def home(tmp_path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("HEADWATER_HOME", str(tmp_path / "home"))
    return str(tmp_path / "home")


def _random(mib: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).random(mib * MIB // 8).reshape(-1, 1024)


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(field)


def _header(store: LocalObjectStore, key: str) -> dict:
    with open(store.path(blob_key(key)), "rb") as f:
        head = f.read(8)
        hlen = struct.unpack("<I", head[4:])[0]
        return json.loads(f.read(hlen))


# -- keys --------------------------------------------------------------------------------


def test_a_large_buffer_is_keyed_by_its_chunk_digests(tmp_path) -> None:
    a = _random(80)
    enc = encode(a)
    raw = memoryview(a).cast("B")
    digests = b"".join(blake3.blake3(raw[i : i + CHUNK]).digest() for i in range(0, raw.nbytes, CHUNK))
    assert enc.digests == {1: digests}
    assert enc.key == key_of_digests([(len(enc.pickled), enc.pickled, False), (raw.nbytes, digests, True)])
    flat = blake3.blake3(struct.pack("<Q", len(enc.pickled)) + enc.pickled + struct.pack("<Q", raw.nbytes))
    flat.update(raw)
    assert enc.key != flat.hexdigest()  # the tree form, not the flat one
    assert encode(a.copy()).key == enc.key  # a pure function of the bytes: equal values dedup


def test_a_buffer_below_the_tree_size_keeps_the_flat_key() -> None:
    a = np.ones((TREE_MIN - 8192) // 8)
    enc = encode(a)
    raw = memoryview(a).cast("B")
    flat = blake3.blake3(struct.pack("<Q", len(enc.pickled)) + enc.pickled + struct.pack("<Q", raw.nbytes))
    flat.update(raw)
    assert enc.digests == {} and enc.key == flat.hexdigest()


@pytest.mark.parametrize("pieces", [[1], [CHUNK - 1, 3], [7, CHUNK, CHUNK + 5, 100]])
def test_the_key_does_not_depend_on_how_the_bytes_arrive(pieces: list[int]) -> None:
    data = np.random.default_rng(3).integers(0, 255, TREE_MIN + 12345, dtype=np.uint8).tobytes()
    whole = KeyHasher(len(data))
    whole.part(len(data))
    whole.update(data)
    split = KeyHasher(len(data))
    split.part(len(data))
    pos = 0
    for n in pieces:
        split.update(data[pos : pos + n])
        pos += n
    split.update(data[pos:])
    assert split.hexdigest() == whole.hexdigest()
    assert split.digests == whole.digests


def test_chunk_digests_are_in_the_header_and_round_trip(tmp_path) -> None:
    store = LocalObjectStore(tmp_path / "s")
    cs = ContentStore(store)
    a = _random(70)
    ref = cs.save(a)
    header = _header(store, ref["key"])
    assert header["v"] == 2 and header["chunk"] == CHUNK and list(header["trees"]) == ["1"]
    assert len(header["trees"]["1"]) == 64 * (-(-a.nbytes // CHUNK))
    assert np.array_equal(cs.load(ref), a)
    small = cs.save(np.arange(100_000.0))
    assert _header(store, small["key"])["v"] == 1  # blobs without a tree part stay format 1


def test_a_damaged_chunk_fails_the_full_load(tmp_path) -> None:
    cs = ContentStore(LocalObjectStore(tmp_path / "s"))
    a = _random(70)
    ref = cs.save(a)
    path = cs.objects.path(blob_key(ref["key"]))
    with open(path, "r+b") as f:
        f.seek(40 * MIB)
        f.write(b"\0\1\2\3")
    with pytest.raises(DataCorruptionError, match="does not match its key"):
        cs.load(ref)


# -- views on the local store --------------------------------------------------------------


def test_a_slice_reads_only_its_chunks(tmp_path) -> None:
    cs = ContentStore(LocalObjectStore(tmp_path / "s"))
    a = _random(256)
    ref = cs.save(a)
    before = _status_kib("RssFile")
    v = cs.view(ref)
    assert v.lazy and v.shape == a.shape and v.dtype == a.dtype and v.bytes_read == 0
    rows = a.shape[0] // 100  # 1% of the array
    got = v[500 : 500 + rows]
    assert np.array_equal(got, a[500 : 500 + rows]) and not got.flags.writeable
    assert v.bytes_read <= rows * a.strides[0] + 2 * CHUNK
    grew = (_status_kib("RssFile") - before) * 1024
    assert grew <= rows * a.strides[0] + 2 * CHUNK + 4 * MIB  # the mapping holds only what was read
    assert v[3, 7] == a[3, 7] and np.array_equal(v[-2:, ::100], a[-2:, ::100])
    read = v.bytes_read
    rows = [7_000, -1, 7_001, 20_000]
    assert np.array_equal(v[rows, 5:9], a[rows, 5:9])  # picked rows: only their chunks
    assert v.bytes_read <= read + 3 * CHUNK
    read = v.bytes_read
    with pytest.raises(IndexError):
        v[[a.shape[0]]]
    assert v.bytes_read == read  # refused without reading anything
    assert np.array_equal(v[a[:, 0] > 0.5], a[a[:, 0] > 0.5])  # a mask: the whole array first
    assert v.bytes_read == a.nbytes
    assert np.array_equal(np.asarray(v), a)
    v.close()


def test_a_compressed_array_is_viewed_frame_by_frame(tmp_path, monkeypatch) -> None:
    from headwater.store import codec

    store = LocalObjectStore(tmp_path / "s")
    cs = ContentStore(store)
    a = np.arange(96 * MIB // 8, dtype=np.float64)
    monkeypatch.setattr(codec, "_choose_frames", lambda part, frame: True)  # not left to timing
    ref = cs.save(a)
    monkeypatch.undo()
    assert _header(store, ref["key"])["parts"][1][3] == "zstd"
    v = cs.view(ref)
    assert v.lazy
    assert np.array_equal(v[5_000_000:5_000_100], a[5_000_000:5_000_100])
    assert v.bytes_read <= 2 * CHUNK
    assert np.array_equal(v.load(), a)


def test_a_damaged_chunk_is_found_by_the_slice_that_reads_it_and_quarantined(tmp_path) -> None:
    store = LocalObjectStore(tmp_path / "s")
    cs = ContentStore(store)
    a = _random(80)
    ref = cs.save(a)
    with open(store.path(blob_key(ref["key"])), "r+b") as f:
        f.seek(60 * MIB)
        f.write(b"\xff" * 16)
    v = cs.view(ref)
    assert np.array_equal(v[:10], a[:10])  # the damage is elsewhere: this slice is good
    damaged_row = (60 * MIB - 4096) // a.strides[0]
    with pytest.raises(DataCorruptionError, match="of its array do not match their digest"):
        v[damaged_row]
    assert not store.exists(blob_key(ref["key"])) and store.list_dir("quarantine")
    assert cs.save(a) == ref and np.array_equal(cs.view(ref)[damaged_row], a[damaged_row])


def test_a_damaged_header_digest_is_refused_before_any_read(tmp_path) -> None:
    store = LocalObjectStore(tmp_path / "s")
    cs = ContentStore(store)
    a = _random(70)
    ref = cs.save(a)
    path = store.path(blob_key(ref["key"]))
    with open(path, "rb") as f:
        blob = bytearray(f.read(64 << 10))
    at = blob.index(b'"trees":{"1":"') + 20
    blob[at : at + 1] = b"0" if blob[at : at + 1] != b"0" else b"1"  # a digest that lies
    with open(path, "r+b") as f:
        f.write(blob)
    with pytest.raises(DataCorruptionError, match="chunk digests do not match its bytes"):
        cs.view(ref)  # the view refuses the header; the full read it falls back to names the damage
    assert store.list_dir("quarantine")


def test_views_of_other_values_load_whole(tmp_path) -> None:
    cs = ContentStore(LocalObjectStore(tmp_path / "s"))
    for value in ({"a": list(range(10))}, np.arange(10), list(range(200_000))):
        v = cs.view(cs.save(value))
        assert not v.lazy
        assert v[2] == value[2] if not isinstance(value, dict) else v["a"] == value["a"]


def test_a_missing_blob_is_named(tmp_path) -> None:
    store = LocalObjectStore(tmp_path / "s")
    cs = ContentStore(store)
    ref = cs.save(_random(70))
    store.delete(blob_key(ref["key"]))
    with pytest.raises(DataMissingError, match="is missing"):
        cs.view(ref)


# -- S3: range reads into the cache ----------------------------------------------------------


def test_a_slice_on_s3_fetches_only_its_chunks_into_the_cache(s3_bucket: str, home: str) -> None:
    ds = Datastore(f"s3://{s3_bucket}/pre")
    a = _random(80)
    ref = ds.content.save(a)
    bkey = blob_key(ref["key"])
    ds.objects.cache.discard(ds.objects._cache_path(bkey))  # as on another machine: nothing cached
    v = ds.content.view(ref)
    ranged = v._lazy._ranged
    rows = a.shape[0] // 100
    assert np.array_equal(v[200 : 200 + rows], a[200 : 200 + rows])
    assert ranged.fetched <= rows * a.strides[0] + 2 * CHUNK  # bytes transferred for the array
    partial = ds.objects._cache_path(bkey) + ".partial"
    assert os.stat(partial).st_blocks * 512 <= 3 * CHUNK  # the cache holds what was read, no more
    v.close()
    again = Datastore(f"s3://{s3_bucket}/pre").content.view(ref)  # another reader: served from the cache
    assert np.array_equal(again[200 : 200 + rows], a[200 : 200 + rows])
    assert again._lazy._ranged.fetched == 0
    assert np.array_equal(np.asarray(again), a)


def test_a_damaged_object_in_s3_is_found_by_a_slice(s3_env, s3_bucket: str, home: str) -> None:
    ds = Datastore(f"s3://{s3_bucket}/pre")
    a = _random(70)
    ref = ds.content.save(a)
    bkey = blob_key(ref["key"])
    good = bytearray(ds.objects.get(bkey))
    good[50 * MIB : 50 * MIB + 8] = b"\xff" * 8
    s3 = s3_env.boto3()
    s3.put_object(Bucket=s3_bucket, Key=f"pre/{bkey}", Body=bytes(good))
    ds.objects.cache.discard(ds.objects._cache_path(bkey))
    v = ds.content.view(ref)
    assert np.array_equal(v[:5], a[:5])
    with pytest.raises(DataCorruptionError, match="do not match their digest"):
        v[(50 * MIB - 4096) // a.strides[0]]
    assert not ds.objects.exists(bkey) and len(ds.objects.list_dir("quarantine")) == 1


def test_a_damaged_cached_chunk_is_fetched_again(s3_bucket: str, home: str) -> None:
    ds = Datastore(f"s3://{s3_bucket}/pre")
    a = _random(70)
    ref = ds.content.save(a)
    bkey = blob_key(ref["key"])
    cached = ds.objects.local_path(bkey)
    with open(cached, "r+b") as f:  # the local disk damaged the cached copy; S3 is good
        f.seek(30 * MIB)
        f.write(b"\0" * 64)
    v = ds.content.view(ref)
    row = (30 * MIB - 4096) // a.strides[0]
    assert np.array_equal(v[row], a[row])
    assert ds.objects.exists(bkey) and ds.objects.list_dir("quarantine") == []


# -- in flows and the client -----------------------------------------------------------------


def test_a_step_views_its_parents_array(tmp_path, use_root) -> None:
    root = tmp_path / "store"
    r = run_flow("view_flow.py", "run", root=root)
    assert r.returncode == 0, r.output
    use_root(root)
    run = Flow("ViewFlow").latest_run
    peek = run["peek"].task
    big = np.random.default_rng(7).random(80 * MIB // 8).reshape(-1, 512)
    assert peek["lazy"].data is True and peek["shape"].data == big.shape
    assert np.array_equal(peek["head"].data, big[:100])
    assert peek["bytes_read"].data <= CHUNK
    assert peek["label_view"].data == "not"
    v = run["start"].task["big"].view()  # the client reads by chunk as well
    assert v.lazy and np.array_equal(v[-3:], big[-3:]) and v.bytes_read <= 2 * CHUNK


def test_a_join_loads_only_the_inputs_it_touches(tmp_path, use_root) -> None:
    root = tmp_path / "store"
    r = run_flow("lazy_join_flow.py", "run", root=root, timeout=300)
    assert r.returncode == 0, r.output
    use_root(root)
    run = Flow("LazyJoinFlow").latest_run
    keys = {t["n"].data: t["x"].sha for t in run["fan"]}
    join = run["join"].task
    assert join["ns"].data == list(range(100))
    mapped = set(join["mapped"].data) & set(keys.values())
    assert mapped == {keys[7]}  # of 100 inputs' arrays, only the one read was loaded
    assert join["picked_sum"].data == float(np.random.default_rng(7).random((2 << 20) // 8).sum())


def test_viewing_an_unknown_artifact_names_it(tmp_path) -> None:
    from headwater.flow.views import ArtifactNotFound, view
    from headwater.store.views import ArtifactView

    class Fake:
        pass

    f = Fake()
    f.__dict__.update({"_hw_refs": {}, "_hw_viewer": lambda ref: None, "_hw_step_name": "s", "x": 5})
    with pytest.raises(ArtifactNotFound, match="Step 's' has no artifact 'nope' to view"):
        view(f, "nope")  # type: ignore[arg-type]
    v = view(f, "x")  # type: ignore[arg-type]
    assert isinstance(v, ArtifactView) and v.load() == 5


def test_parse_blob_header_reads_the_digests(tmp_path) -> None:
    store = LocalObjectStore(tmp_path / "s")
    cs = ContentStore(store)
    a = _random(65)
    ref = cs.save(a)
    with open(store.path(blob_key(ref["key"])), "rb") as f:
        data = f.read()
    h = parse_blob_header(lambda off, n: data[off : off + n], len(data), ref["key"], "x")
    assert len(h.trees[1]) == 32 * (-(-a.nbytes // CHUNK))


# -- compatibility and robustness --------------------------------------------------------------


def test_a_blob_written_before_chunk_keys_still_loads_and_verifies(tmp_path, monkeypatch) -> None:
    import io

    from headwater.store import codec
    from headwater.store.blobcheck import open_source, verify_source

    store = LocalObjectStore(tmp_path / "s")
    cs = ContentStore(store)
    a = _random(65)
    enc = codec.encode(a)
    legacy = codec.Encoded(enc.pickled, enc.buffers, codec.legacy_key(enc.pickled, enc.buffers, enc.size), enc.size)
    monkeypatch.setattr(codec, "_tree_digests", lambda enc, views: {})  # what the writer did then
    buf = io.BytesIO()
    codec.write_blob(legacy, buf)
    monkeypatch.undo()
    assert b'"v":1' in buf.getvalue()[:64]
    store.put(blob_key(legacy.key), buf.getbuffer())
    ref = {"key": legacy.key, "size": legacy.size, "type": "numpy.ndarray"}
    assert legacy.key != enc.key
    assert np.array_equal(cs.load(ref), a)  # a format-1 blob's parts are all hashed plainly
    assert verify_source(open_source(store, blob_key(legacy.key)), legacy.key) == legacy.size
    v = cs.view(ref)
    assert not v.lazy and np.array_equal(v[:3], a[:3])  # no digests: the view loads it whole
    assert store.list_dir("quarantine") == []


def test_a_view_is_safe_to_share_between_threads(tmp_path, monkeypatch) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from headwater.store import codec

    cs = ContentStore(LocalObjectStore(tmp_path / "s"))
    a = np.arange(80 * MIB // 8, dtype=np.float64)  # compressed: chunks are decoded on demand
    monkeypatch.setattr(codec, "_choose_frames", lambda part, frame: True)
    ref = cs.save(a)
    monkeypatch.undo()
    v = cs.view(ref)
    starts = [int(x) for x in np.random.default_rng(0).integers(0, a.size - 1000, 64)]
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda s: np.array_equal(v[s : s + 1000], a[s : s + 1000]), starts))
    assert all(got) and v.bytes_read <= a.nbytes
    assert cs.objects.list_dir("quarantine") == []


def test_views_dropped_without_close_leave_no_open_files(tmp_path) -> None:
    import gc

    cs = ContentStore(LocalObjectStore(tmp_path / "s"))
    a = _random(65)
    ref = cs.save(a)
    cs.view(ref)[:1]
    gc.collect()
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(30):
        assert cs.view(ref)[0, 0] == a[0, 0]
    gc.collect()
    assert len(os.listdir("/proc/self/fd")) <= before + 2


def test_a_view_reads_a_part_of_mixed_raw_and_zstd_frames(tmp_path, monkeypatch) -> None:
    from headwater.store import codec

    store = LocalObjectStore(tmp_path / "s")
    cs = ContentStore(store)
    a = np.arange(72 * MIB // 8, dtype=np.float64)
    monkeypatch.setattr(codec, "_choose_frames", lambda part, frame: frame % 2 == 0)
    ref = cs.save(a)
    monkeypatch.undo()
    frames = _header(store, ref["key"])["parts"][1][4]
    assert any(len(f) == 1 for f in frames) and any(len(f) == 2 for f in frames)
    v = cs.view(ref)
    for start in (0, CHUNK // 8 - 3, 5 * CHUNK // 8 + 11, a.size - 7):
        assert np.array_equal(v[start : start + 7], a[start : start + 7])
    assert np.array_equal(v.load(), a)
