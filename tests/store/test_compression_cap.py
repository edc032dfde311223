"""Compression never slows saving down (issue 12): frames compressed ahead of the writer,
raw frames where compression was not ready (blob format version 2), and every reader of
blobs (loading, item tables, verify) on such blobs. Which frames are raw is forced through
``codec._choose_frames`` (a test hook), never left to timing."""

from __future__ import annotations

import json
import struct
import threading
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from flowrun import USER, run_flow
from headwater.cli.main import cli
from headwater.exceptions import DataCorruptionError
from headwater.store import ContentStore, Datastore, LocalObjectStore, codec
from headwater.store.blobcheck import open_source, verify_source
from headwater.store.codec import UnsupportedBlobError, encode, read_blob, write_blob
from headwater.store.content import blob_key
from headwater.store.frames import AheadCompressor
from headwater.store.itemtable import load_item, save_item_table

MIB = 1 << 20


@pytest.fixture(autouse=True)
def small_frames(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(codec, "FRAME", 1 * MIB)  # many frames from small arrays keep the tests fast


def _force(monkeypatch: pytest.MonkeyPatch, choose) -> None:
    monkeypatch.setattr(codec, "_choose_frames", choose)


def _alternate(part: int, frame: int) -> bool:
    return frame % 2 == 0  # frames 0, 2, 4 ... zstd; 1, 3, 5 ... raw


def _header(path: str | Path) -> dict:
    with open(path, "rb") as f:
        magic, hlen = struct.unpack("<4sI", f.read(8))
        assert magic == b"HWB1"
        return json.loads(f.read(hlen))


def _write(obj, path: Path) -> tuple[str, str]:
    enc = encode(obj)
    with open(path, "wb") as f:
        assert write_blob(enc, f) == path.stat().st_size
    return str(path), enc.key


def _flip(path: str | Path, offset: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0xFF]))


def _raw_frame_offset(part: list) -> int:
    """The blob offset of the middle of the part's first raw frame."""
    off = part[0]
    for frame in part[4]:
        if len(frame) == 1:
            return off + frame[0] // 2
        off += frame[1]
    raise AssertionError("no raw frame")


def _mapped(arr: np.ndarray, path: str) -> bool:
    """Whether ``arr``'s memory is a mapping of the file ``path``."""
    address = arr.__array_interface__["data"][0]
    with open("/proc/self/maps") as f:
        for line in f:
            fields = line.split()
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            if lo <= address < hi:
                return len(fields) > 5 and fields[5] == path
    return False


# -- the adaptive writer, as it runs -----------------------------------------------------


@pytest.mark.parametrize("kind", ["compressible", "incompressible", "mixed"])
def test_round_trips_whatever_the_writer_chose(kind: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    obj = {
        "compressible": np.arange(3 * MIB, dtype=np.float64),
        "incompressible": rng.random(3 * MIB),
        "mixed": [np.arange(MIB, dtype=np.int64), rng.random(MIB), b"abcd" * MIB, rng.integers(0, 9, 2 * MIB)],
    }[kind]
    path, key = _write(obj, tmp_path / "blob")
    header = _header(path)
    raw_frames = [f for p in header["parts"] if len(p) > 4 for f in p[4] if len(f) == 1]
    assert header["v"] == (2 if raw_frames else 1)  # version 2 only where a raw frame needs it
    for p in header["parts"]:
        if p[3] == "zstd" and len(p) > 4:
            assert any(len(f) == 2 for f in p[4])  # a part with no zstd frame left is a raw part
    out = read_blob(path, key)
    if kind == "mixed":
        for a, b in zip(out, obj, strict=True):
            assert bytes(memoryview(a).cast("B")) == bytes(memoryview(b).cast("B"))
    else:
        np.testing.assert_array_equal(out, obj)
    if kind == "incompressible":
        assert [p[3] for p in header["parts"]] == ["raw", "raw"] and _mapped(out, path)  # mmap-able, as before


def test_the_writer_never_waits_for_compression() -> None:
    chunks = [memoryview(bytes(1000)) for _ in range(8)]
    release = threading.Event()

    def compress(chunk: memoryview) -> bytes:
        assert release.wait(30), "the writer waited for a frame"  # compression never finishes in time
        return b"z" * 10

    with AheadCompressor(chunks, [10] * 8, compress, workers=2) as ahead:
        taken = [ahead.take(i) for i in range(8)]
        release.set()
    assert taken == [None] * 8  # every frame written raw
    assert ahead.wasted <= 2  # at most the frames the two workers were on when the writer got there


def test_a_blob_of_one_round_of_frames_is_compressed_whole() -> None:
    chunks = [memoryview(bytes(1000)) for _ in range(2)]  # one round: a frame per core (2)

    def compress(chunk: memoryview) -> bytes:
        return b"z" * 10

    with AheadCompressor(chunks, [10] * 2, compress, workers=2) as ahead:
        taken = [ahead.take(i) for i in range(2)]
    assert taken == [b"z" * 10] * 2


def test_a_slow_writer_gets_every_frame_compressed_within_the_budget() -> None:
    chunks = [memoryview(bytes(100)) for _ in range(40)]
    budget, held = 300, []  # the window: 10 frames (300 bytes less 2 frames in flight, 10 bytes each)

    def compress(chunk: memoryview) -> bytes:
        with ahead._cv:
            held.append(ahead._held)  # finished frames waiting + frames in flight
        return b"z" * 10

    ahead = AheadCompressor(chunks, [10] * 40, compress, workers=2, budget=budget)
    with ahead:
        got = []
        for i in range(40):
            with ahead._cv:  # a slow sink: compression is always done before the writer gets there
                assert ahead._cv.wait_for(lambda i=i: ahead._state[i].value in ("ready", "raw"), timeout=30)
            got.append(ahead.take(i))
    assert got == [b"z" * 10] * 40 and ahead.wasted == 0
    assert max(held) <= budget


# -- the blob format: raw frames, version 2 ---------------------------------------------


def test_mixed_raw_and_zstd_frames_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _force(monkeypatch, _alternate)
    arr = np.arange(5 * MIB // 8 + 1000, dtype=np.float64)  # 6 frames, the last one short
    path, key = _write(arr, tmp_path / "mixed")
    header = _header(path)
    assert header["v"] == 2
    off, stored, n, codec_name, frames = header["parts"][1]
    assert codec_name == "zstd" and n == arr.nbytes
    assert [len(f) for f in frames] == [2, 1, 2, 1, 2, 1]
    assert [f[0] for f in frames] == [MIB] * 5 + [n - 5 * MIB]
    assert stored == sum(f[-1] for f in frames) < n
    out = read_blob(path, key)
    np.testing.assert_array_equal(out, arr)
    assert out.flags.writeable


def test_all_frames_raw_is_a_plain_raw_part_and_mapped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _force(monkeypatch, lambda part, frame: False)
    arr = np.arange(3 * MIB // 8 * 2, dtype=np.float64)
    path, key = _write(arr, tmp_path / "raw")
    header = _header(path)
    assert header["v"] == 1 and header["parts"][1][1:] == [arr.nbytes, arr.nbytes, "raw"]
    out = read_blob(path, key)
    np.testing.assert_array_equal(out, arr)
    assert _mapped(out, path)


def test_all_frames_compressed_is_still_format_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _force(monkeypatch, lambda part, frame: True)
    arr = np.arange(3 * MIB // 8 * 2, dtype=np.float64)
    path, key = _write(arr, tmp_path / "zstd")
    header = _header(path)
    assert header["v"] == 1
    assert all(len(f) == 2 for f in header["parts"][1][4])
    np.testing.assert_array_equal(read_blob(path, key), arr)


def test_a_version_1_blob_still_reads(tmp_path: Path) -> None:
    # Written by hand the way every earlier headwater wrote it: two zstd frames, "v": 1.
    import zstandard

    data = np.arange(MIB // 4, dtype=np.float64)  # 2 MiB: two 1 MiB frames
    enc = encode(data)
    raw = memoryview(data).cast("B")
    z = [zstandard.ZstdCompressor(level=1).compress(raw[i : i + MIB]) for i in (0, MIB)]
    parts = [[0, len(enc.pickled), len(enc.pickled), "raw"], [4096, len(z[0]) + len(z[1]), raw.nbytes, "zstd",
                                                              [[MIB, len(z[0])], [MIB, len(z[1])]]]]
    hlen = 200
    parts[0][0] = 8 + hlen
    header = json.dumps({"v": 1, "parts": parts}, separators=(",", ":")).encode().ljust(hlen)
    blob = struct.pack("<4sI", b"HWB1", hlen) + header + enc.pickled
    blob = blob.ljust(4096, b"\0") + z[0] + z[1]
    path = tmp_path / "v1"
    path.write_bytes(blob)
    np.testing.assert_array_equal(read_blob(str(path), enc.key), data)


def _store_with(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, obj) -> tuple[ContentStore, dict]:
    _force(monkeypatch, _alternate)
    cs = ContentStore(LocalObjectStore(tmp_path / "store"))
    return cs, cs.save(obj)


def test_a_reader_that_knows_only_version_1_refuses_a_version_2_blob_and_leaves_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cs, ref = _store_with(tmp_path, monkeypatch, np.arange(MIB // 2, dtype=np.float64))
    monkeypatch.setattr(codec, "FORMAT_VERSIONS", (1,))  # an older headwater
    with pytest.raises(UnsupportedBlobError, match=r"its format version is 2 \(this version reads 1\)"):
        cs.load(ref)
    assert cs.has(ref["key"])  # not quarantined: a newer reader can read it
    monkeypatch.undo()
    np.testing.assert_array_equal(cs.load(ref), np.arange(MIB // 2, dtype=np.float64))


def test_a_future_version_is_unsupported(tmp_path: Path) -> None:
    path, key = _write(np.zeros(1000), tmp_path / "v3")
    data = Path(path).read_bytes().replace(b'{"v":1,', b'{"v":3,', 1)
    Path(path).write_bytes(data)
    with pytest.raises(UnsupportedBlobError, match=r"format version is 3 \(this version reads 1 and 2\)"):
        read_blob(path, key)


def test_a_corrupt_raw_frame_is_detected_and_quarantined(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cs, ref = _store_with(tmp_path, monkeypatch, np.arange(MIB // 2, dtype=np.float64))
    path = cs.objects.path(blob_key(ref["key"]))
    _flip(path, _raw_frame_offset(_header(path)["parts"][1]))
    with pytest.raises(DataCorruptionError, match=f"Blob {ref['key']} .* does not match its key"):
        cs.load(ref)
    assert not cs.has(ref["key"])  # moved to quarantine/, so a re-run stores it again


@pytest.mark.parametrize("frames, why", [
    ([[MIB, 10, "x"]], "frame table is unreadable"),
    ([[MIB, "10"]], "frame table is unreadable"),
    ([[MIB]], "frame table does not add up"),
])
def test_a_damaged_frame_table_is_corrupt(frames, why, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _force(monkeypatch, _alternate)
    path, key = _write(np.arange(MIB // 4, dtype=np.float64), tmp_path / "t")  # 2 frames: zstd, raw
    header = _header(path)
    part = header["parts"][1]
    part[4] = frames + part[4][1:]
    text = json.dumps(header, separators=(",", ":")).encode()
    with open(path, "r+b") as f:
        hlen = struct.unpack("<4sI", f.read(8))[1]
        assert len(text) <= hlen
        f.write(text.ljust(hlen))
    with pytest.raises(DataCorruptionError, match=why):
        read_blob(path, key)


def test_item_tables_read_items_from_a_list_blob_with_raw_frames(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    items = [np.arange(MIB // 4, dtype=np.int64) * i for i in range(3)]  # 2 MiB each, 2 frames each
    cs, ref = _store_with(tmp_path, monkeypatch, items)
    assert _header(cs.objects.path(blob_key(ref["key"])))["v"] == 2
    table = save_item_table(cs, items, list_key=ref["key"])
    assert table is not None
    for i, want in enumerate(items):
        np.testing.assert_array_equal(load_item(cs, table, i), want)


# -- verify ---------------------------------------------------------------------------


def _verify(cs: ContentStore, key: str) -> int:
    source = open_source(cs.objects, blob_key(key))
    try:
        return verify_source(source, key)
    finally:
        source.close()


def test_verify_passes_a_version_2_blob_and_finds_damage_in_either_kind_of_frame(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    arr = np.arange(MIB // 2, dtype=np.float64)  # 4 frames: zstd, raw, zstd, raw
    for damage in ("raw", "zstd"):
        cs, ref = _store_with(tmp_path / damage, monkeypatch, arr)
        assert _verify(cs, ref["key"]) == ref["size"]
        path = cs.objects.path(blob_key(ref["key"]))
        part = _header(path)["parts"][1]
        zstd_middle = part[0] + part[4][0][1] // 2
        _flip(path, _raw_frame_offset(part) if damage == "raw" else zstd_middle)
        with pytest.raises(DataCorruptionError, match="(does not decode|does not match its key)"):
            _verify(cs, ref["key"])


def test_headwater_verify_on_a_store_with_a_version_2_blob(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / ".headwater"
    r = run_flow("compressible_array_flow.py", "run", root=root)
    assert r.returncode == 0, r.output
    ds = Datastore(str(root))
    (run_id,) = ds.records.runs("CompressibleArrayFlow")
    (task,) = ds.records.tasks("CompressibleArrayFlow", run_id, "start")
    ref = ds.records.read_attempt("CompressibleArrayFlow", run_id, "start", task, 0)["artifacts"]["ramp"]
    # The run's own blob is whatever the writer chose; store the same content with raw frames.
    path = ds.objects.path(blob_key(ref["key"]))
    arr = ds.content.load(ref)
    Path(path).unlink()
    _force(monkeypatch, _alternate)
    assert ds.content.save(arr)["key"] == ref["key"]
    assert _header(path)["v"] == 2
    env = {"HEADWATER_DATASTORE_ROOT": str(root), "HEADWATER_USER": USER, "HEADWATER_HOME": str(tmp_path / "home")}
    ok = CliRunner().invoke(cli, ["verify"], env=env)
    assert ok.exit_code == 0 and "No damage." in ok.stdout, ok.output
    _flip(path, _raw_frame_offset(_header(path)["parts"][1]))
    bad = CliRunner().invoke(cli, ["verify", "--json"], env=env)
    assert bad.exit_code == 1, bad.output
    (problem,) = json.loads(bad.stdout)["problems"]
    assert problem["problem"] == "damaged" and problem["key"] == ref["key"]
    assert "does not match its key" in problem["reason"]
    assert {r["artifact"] for r in problem["references"]} == {"ramp"}


# -- S3 -------------------------------------------------------------------------------


def test_s3_round_trip_and_verify_of_a_version_2_blob(s3_bucket: str, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADWATER_HOME", str(tmp_path / "home"))
    _force(monkeypatch, _alternate)
    arr = np.arange(3 * MIB // 8 * 2, dtype=np.float64)  # 6 frames
    ds = Datastore(f"s3://{s3_bucket}/team/ds")
    ref = ds.content.save(arr)
    monkeypatch.setenv("HEADWATER_HOME", str(tmp_path / "elsewhere"))  # another machine: an empty read cache
    fresh = Datastore(f"s3://{s3_bucket}/team/ds")
    key = blob_key(ref["key"])
    head = fresh.objects.get_range(key, 0, 4096)
    assert b'{"v":2,' in head
    np.testing.assert_array_equal(fresh.content.load(ref), arr)
    source = open_source(fresh.objects, key)  # ranged reads from S3, not the cache
    try:
        assert verify_source(source, ref["key"]) == ref["size"]
    finally:
        source.close()
