"""``headwater.S3`` against a real S3 API server (moto on 127.0.0.1): every method, ranges,
missing keys, overwrite=False, metadata, bulk transfers, S3(run=...) in a flow, and errors."""

from __future__ import annotations

import io
import json
import os
import signal
from pathlib import Path

import pytest

import headwater
from flowrun import run_flow
from headwater.datatools import (HeadwaterS3InvalidObject, HeadwaterS3InvalidRange, HeadwaterS3NotFound,
                                 HeadwaterS3URLException, MetaflowS3NotFound, RangeInfo, S3, S3GetObject,
                                 S3PutObject)
from headwater.datatools import transfer
from headwater.datatools.progress import Progress
from headwater.exceptions import HeadwaterS3Exception


@pytest.fixture
def root(s3_bucket: str) -> str:
    return f"s3://{s3_bucket}/data"


@pytest.fixture
def s3(root: str, tmp_path: Path):
    with S3(s3root=root, tmproot=str(tmp_path)) as client:
        yield client


def _tree(s3: S3) -> None:
    """The hierarchy of Metaflow's list_paths docstring."""
    s3.put_many([("a/0.txt", "0"), ("a/b/1.txt", "1"), ("a/c/2.txt", "2"), ("a/d/e/3.txt", "3"), ("f/4.txt", "4")])


def test_s3_is_exported_lazily_from_headwater():
    assert headwater.S3 is S3
    assert "S3" in headwater.__all__
    assert MetaflowS3NotFound is HeadwaterS3NotFound


def test_put_then_get_fills_every_field(s3: S3, root: str, tmp_path: Path):
    assert s3.put("k/text.txt", "héllo") == f"{root}/k/text.txt"
    s3.put("k/bytes.bin", b"\x00\x01\x02")
    s3.put("k/file.bin", io.BytesIO(b"from a file object"))
    obj = s3.get("k/text.txt")
    assert (obj.url, obj.key, obj.prefix) == (f"{root}/k/text.txt", "k/text.txt", root)
    assert obj.exists and obj.downloaded and obj.has_info
    assert obj.text == "héllo" and obj.blob == "héllo".encode() and obj.size == len("héllo".encode())
    assert Path(obj.path).parent.parent == tmp_path
    assert obj.range_info == RangeInfo(obj.size, 0, obj.size)
    assert isinstance(obj.last_modified, float) and obj.last_modified > 1.7e9
    assert obj.content_type == "binary/octet-stream" and obj.metadata is None and obj.encryption is None
    assert repr(obj) == f"<S3Object {root}/k/text.txt ({obj.size} bytes, local)>"
    assert s3.get("k/bytes.bin").blob == b"\x00\x01\x02"
    assert s3.get("k/file.bin").blob == b"from a file object"
    bare = s3.get("k/text.txt", return_info=False)
    assert bare.text == "héllo" and not bare.has_info and bare.content_type is None and bare.last_modified is None


def test_close_removes_the_downloads(root: str, tmp_path: Path):
    with S3(s3root=root, tmproot=str(tmp_path)) as s3:
        s3.put("x", "1")
        path = s3.get("x").path
        assert os.path.exists(path)
    assert not os.path.exists(path) and list(tmp_path.iterdir()) == []
    with pytest.raises(HeadwaterS3Exception, match="closed"):
        s3.get("x")


def test_full_urls_without_a_root(s3: S3, root: str, tmp_path: Path):
    s3.put("u.txt", "u")
    with S3(tmproot=str(tmp_path)) as bare:
        obj = bare.get(f"{root}/u.txt")
        assert (obj.key, obj.prefix, obj.text) == (f"{root}/u.txt", None, "u")


def test_metadata_and_content_type_round_trip(s3: S3, s3_bucket: str, s3_server):
    s3.put("m.json", "{}", content_type="application/json", metadata={"owner": "ml", "n": 3})
    for obj in (s3.get("m.json"), s3.info("m.json"), s3.info_many(["m.json"])[0]):
        assert obj.content_type == "application/json"
        assert obj.metadata == {"owner": "ml", "n": 3}
    # Stored under Metaflow's user-metadata key, so Metaflow reads headwater's objects and back.
    head = s3_server.boto3().head_object(Bucket=s3_bucket, Key="data/m.json")
    assert json.loads(head["Metadata"]["metaflow-user-attributes"]) == {"owner": "ml", "n": 3}
    assert head["ContentType"] == "application/json"


def test_byte_ranges(s3: S3):
    s3.put("r.bin", b"0123456789")
    cases = [(S3GetObject("r.bin", 2, 3), b"234", (10, 2, 3)), (S3GetObject("r.bin", 4, None), b"456789", (10, 4, 6)),
             (S3GetObject("r.bin", 0, -3), b"789", (10, 7, 3)), (S3GetObject("r.bin", 8, 10), b"89", (10, 8, 2)),
             (S3GetObject("r.bin", None, None), b"0123456789", (10, 0, 10))]
    for req, blob, info in cases:
        obj = s3.get(req)
        assert (obj.blob, tuple(obj.range_info), obj.size) == (blob, info, len(blob)), req
    many = s3.get_many([req for req, _, _ in cases])
    assert [o.blob for o in many] == [blob for _, blob, _ in cases]


def test_a_range_past_the_end_is_invalid(s3: S3):
    s3.put("r.bin", b"0123456789")
    with pytest.raises(HeadwaterS3InvalidRange, match=r"GET s3://.*/data/r.bin failed: the byte range"):
        s3.get(S3GetObject("r.bin", 100, 5))
    with pytest.raises(HeadwaterS3InvalidRange, match="r.bin"):
        s3.get_many(["r.bin", S3GetObject("r.bin", 100, None)])


def test_missing_keys(s3: S3, root: str):
    s3.put("here", "1")
    with pytest.raises(HeadwaterS3NotFound, match=rf"GET {root}/nope failed: no such key"):
        s3.get("nope")
    with pytest.raises(HeadwaterS3NotFound, match="nope"):
        s3.get_many(["here", "nope"])
    with pytest.raises(HeadwaterS3NotFound, match=rf"HEAD {root}/nope failed"):
        s3.info("nope")
    with pytest.raises(HeadwaterS3NotFound, match="nope"):
        s3.info_many(["here", "nope"])
    gone = s3.get("nope", return_missing=True)
    assert (gone.exists, gone.downloaded, gone.size, gone.key, gone.text) == (False, False, None, "nope", None)
    assert repr(gone) == f"<S3Object {root}/nope (object does not exist)>"
    assert [o.exists for o in s3.get_many(["here", "nope"], return_missing=True)] == [True, False]
    assert [o.exists for o in s3.info_many(["nope", "here"], return_missing=True)] == [False, True]
    assert not s3.info("nope", return_missing=True).exists


def test_overwrite_false_keeps_the_old_object(s3: S3, root: str, tmp_path: Path):
    s3.put("keep", "old")
    assert s3.put("keep", "new", overwrite=False) == f"{root}/keep"
    assert s3.get("keep").text == "old"
    assert s3.put_many([("keep", "new"), ("fresh", "f")], overwrite=False) == [("fresh", f"{root}/fresh")]
    local = tmp_path / "local.txt"
    local.write_text("from disk")
    assert s3.put_files([("keep", str(local)), ("fresh2", str(local))], overwrite=False) == \
        [("fresh2", f"{root}/fresh2")]
    assert [o.text for o in s3.get_many(["keep", "fresh", "fresh2"])] == ["old", "f", "from disk"]
    assert s3.put("keep", "newest") and s3.get("keep").text == "newest"  # overwrite=True is the default


def test_overwrite_false_for_a_multipart_object(s3: S3, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(transfer, "PART_SIZE", 5 << 20)
    big = os.urandom((5 << 20) + 1000)
    s3.put("big", big)  # two parts
    assert s3.put_many([("big", b"small"), ("big2", big)], overwrite=False) == [("big2", f"{s3._s3root}/big2")]
    assert [o.blob == big for o in s3.get_many(["big", "big2"])] == [True, True]


def test_put_many_and_put_files(s3: S3, root: str, tmp_path: Path):
    got = s3.put_many([("p/1", "one"), ("p/2", b"two"),
                       S3PutObject("p/3", "three", content_type="text/plain", metadata={"a": "b"})])
    assert got == [(f"p/{i}", f"{root}/p/{i}") for i in (1, 2, 3)]
    three = s3.get("p/3")
    assert (three.text, three.content_type, three.metadata) == ("three", "text/plain", {"a": "b"})
    f = tmp_path / "f.txt"
    f.write_text("file one")
    got = s3.put_files([("pf/1", str(f)), S3PutObject("pf/2", path=str(f), metadata={"m": "1"})])
    assert got == [("pf/1", f"{root}/pf/1"), ("pf/2", f"{root}/pf/2")]
    assert s3.get("pf/2").metadata == {"m": "1"} and s3.get("pf/1").text == "file one"
    with pytest.raises(HeadwaterS3NotFound, match=r"Local file not found: .*nofile.* \(to upload as 'pf/3'\)"):
        s3.put_files([("pf/3", str(tmp_path / "nofile"))])
    assert s3.put_many([]) == [] and s3.put_files([]) == []


def test_put_rejects_values_that_are_not_bytes(s3: S3):
    with pytest.raises(HeadwaterS3InvalidObject, match="'bad' is of type int, not a string or a bytes object"):
        s3.put("bad", 123)
    with pytest.raises(HeadwaterS3InvalidObject, match="'bad' is of type dict"):
        s3.put_many([("good", "g"), ("bad", {})])
    assert s3.list_recursive() == []  # nothing was sent


def test_list_paths_one_level(s3: S3, root: str):
    _tree(s3)
    top = s3.list_paths()
    assert [(o.key, o.exists, o.url) for o in top] == [("a", False, f"{root}/a/"), ("f", False, f"{root}/f/")]
    listed = s3.list_paths(["a", "f"])
    assert [(o.key, o.exists) for o in listed] == [("0.txt", True), ("b", False), ("c", False), ("d", False),
                                                   ("4.txt", True)]
    assert listed[0].prefix == f"{root}/a/" and listed[0].size == 1 and not listed[0].downloaded
    assert [o.key for o in s3.list_paths(["a/"])] == [o.key for o in listed[:4]]
    assert s3.list_paths(["zzz"]) == []


def test_list_recursive_all_levels(s3: S3, root: str):
    _tree(s3)
    everything = s3.list_recursive()
    assert [o.key for o in everything] == ["a/0.txt", "a/b/1.txt", "a/c/2.txt", "a/d/e/3.txt", "f/4.txt"]
    assert all(o.exists and o.prefix == root for o in everything)
    some = s3.list_recursive(["a/b", "a/d"])
    assert [(o.key, o.prefix) for o in some] == [("1.txt", f"{root}/a/b"), ("e/3.txt", f"{root}/a/d")]
    assert s3.list_recursive(["zzz"]) == []


def test_get_recursive_and_get_all(s3: S3, root: str):
    _tree(s3)
    got = s3.get_recursive(["a/b", "a/d"])
    assert [(o.key, o.prefix, o.text, o.has_info) for o in got] == [("1.txt", f"{root}/a/b", "1", False),
                                                                    ("e/3.txt", f"{root}/a/d", "3", False)]
    info = s3.get_recursive(["a/c"], return_info=True)
    assert [(o.key, o.prefix, o.text, o.content_type) for o in info] == [("a/c/2.txt", root, "2",
                                                                          "binary/octet-stream")]
    single = s3.get_recursive(["f/4.txt"])  # a key that is an object, not a prefix
    assert [(o.key, o.text) for o in single] == [(f"{root}/f/4.txt", "4")]
    assert s3.get_recursive(["zzz"]) == []
    assert [(o.key, o.text) for o in s3.get_all()] == [("a/0.txt", "0"), ("a/b/1.txt", "1"), ("a/c/2.txt", "2"),
                                                       ("a/d/e/3.txt", "3"), ("f/4.txt", "4")]


def test_get_many_of_1000_objects(s3: S3):
    keys = [f"many/{i:04d}" for i in range(1000)]
    assert len(s3.put_many([(k, f"value {k}") for k in keys])) == 1000
    got = s3.get_many(reversed(keys))
    assert [o.text for o in got] == [f"value {k}" for k in reversed(keys)]
    assert len({o.path for o in got}) == 1000
    assert len(s3.list_recursive(["many"])) == 1000


def test_progress_line_only_for_large_transfers():
    out = io.StringIO()
    small = Progress("get", 10, stream=out)
    small._interval = 0
    for _ in range(10):
        small.add_bytes(100)
        small.add_object()
    small.close()
    assert out.getvalue() == ""
    large = Progress("put", 1000, 1000 * 2048, stream=out)
    large._interval = 0
    large.add_bytes(2048)
    large.add_object()
    large.close()
    assert out.getvalue().splitlines()[-1].startswith("S3 put: 1/1000 objects, 2.0 KiB of 2.0 MiB, ")


def test_bad_urls(s3: S3, root: str, tmp_path: Path):
    with pytest.raises(HeadwaterS3URLException, match=r"s3root='http://x/y' is not an S3 URL"):
        S3(s3root="http://x/y")
    with pytest.raises(HeadwaterS3URLException, match="is a full URL, but this S3 client has the root"):
        s3.get(f"{root}/x")
    with S3(tmproot=str(tmp_path)) as bare:
        with pytest.raises(HeadwaterS3URLException, match="'a/x' is not a full s3:// URL, and this S3 client has no"):
            bare.get("a/x")
        with pytest.raises(HeadwaterS3URLException, match=r"get_all\(\) needs a root"):
            bare.get_all()
        with pytest.raises(HeadwaterS3URLException, match="names no bucket"):
            bare.get("s3:///key")
    with pytest.raises(HeadwaterS3Exception, match=r"S3\(role=...\) is not supported"):
        S3(s3root=root, role="arn:aws:iam::1:role/x")
    with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
        S3(colour="blue")


def test_a_missing_bucket_is_named(tmp_path: Path, s3_env):
    with S3(s3root="s3://no-such-bucket-hw/p", tmproot=str(tmp_path)) as s3:
        for call in (lambda: s3.get("k"), lambda: s3.get("k", return_missing=True), lambda: s3.put("k", "v"),
                     lambda: s3.list_paths(), lambda: s3.put_many([("k", "v")])):
            with pytest.raises(HeadwaterS3NotFound, match="the bucket 'no-such-bucket-hw' does not exist") as e:
                call()
            assert "Create the bucket" in e.value.hint


def test_run_root_needs_a_configured_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    class FakeRun:  # a client Run's shape: .id and .parent.id
        id = "17"
        parent = type("F", (), {"id": "SomeFlow"})()

    monkeypatch.delenv("HEADWATER_DATATOOLS_S3ROOT", raising=False)
    monkeypatch.setenv("HEADWATER_DATASTORE_ROOT", str(tmp_path / ".headwater"))
    with pytest.raises(HeadwaterS3URLException, match="none is configured") as e:
        S3(run=FakeRun(), tmproot=str(tmp_path))
    assert "HEADWATER_DATATOOLS_S3ROOT" in e.value.hint
    monkeypatch.setenv("HEADWATER_DATATOOLS_S3ROOT", "s3://bkt/tools")
    with S3(run=FakeRun(), tmproot=str(tmp_path)) as s3:
        assert s3._s3root == "s3://bkt/tools/SomeFlow/17"
    with S3(run=FakeRun(), bucket="other", prefix="p/q", tmproot=str(tmp_path)) as s3:
        assert s3._s3root == "s3://other/p/q/SomeFlow/17"
    from headwater import FlowSpec

    class NotRunning(FlowSpec):
        pass

    with pytest.raises(HeadwaterS3URLException, match=r"S3\(run=self\) was given a flow outside of a running step"):
        S3(run=object.__new__(NotRunning), tmproot=str(tmp_path))
    with pytest.raises(HeadwaterS3URLException, match="takes a step's self or a client Run, not str"):
        S3(run="SomeFlow/17", tmproot=str(tmp_path))
    monkeypatch.delenv("HEADWATER_DATATOOLS_S3ROOT")
    monkeypatch.setenv("HEADWATER_DATASTORE_ROOT", "s3://store-bkt/hw")
    with S3(run=FakeRun(), tmproot=str(tmp_path)) as s3:
        assert s3._s3root == "s3://store-bkt/hw/data/SomeFlow/17"


def test_run_self_inside_a_flow(tmp_path: Path, s3_bucket: str, s3_server, use_root, launcher: str,
                                monkeypatch: pytest.MonkeyPatch):
    tools = f"s3://{s3_bucket}/tools"
    r = run_flow("s3_tools_flow.py", "run", root=tmp_path / ".headwater", launcher=launcher,
                 env={**s3_server.env(), "HEADWATER_DATATOOLS_S3ROOT": tools})
    assert r.returncode == 0, r.output
    use_root(tmp_path / ".headwater")
    from headwater import Flow

    run = Flow("S3ToolsFlow").latest_run
    end = run["end"].task.data
    assert end.greeting == f"hello from {run.id}"
    assert end.keys == ["greeting.txt", "parts/0", "parts/1", "parts/2"]
    assert run["join"].task.data.values == [0, 1, 4]
    assert run["start"].task.data.root_url == f"{tools}/S3ToolsFlow/{run.id}/greeting.txt"
    monkeypatch.setenv("HEADWATER_DATATOOLS_S3ROOT", tools)
    with S3(run=run, tmproot=str(tmp_path)) as s3:  # a client Run, read back from outside the flow
        assert s3.get("greeting.txt").text == f"hello from {run.id}"


def test_large_objects_download_in_ranged_parts(s3: S3, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(transfer, "RANGE_PART", 1 << 20)
    big = os.urandom((3 << 20) + 12345)  # three whole parts and a tail
    s3.put_many([("big/1", big), ("big/2", big[::-1]), ("big/exact", big[:2 << 20])])
    got = s3.get_many(["big/1", "big/2", "big/exact"])
    assert [o.blob for o in got] == [big, big[::-1], big[:2 << 20]]
    assert got[0].range_info == RangeInfo(len(big), 0, len(big)) and got[0].size == len(big)
    part = s3.get(S3GetObject("big/1", (1 << 20) - 5, 10))  # an explicit range is one GET, across a part edge
    assert part.blob == big[(1 << 20) - 5:(1 << 20) + 5] and part.range_info == RangeInfo(len(big), (1 << 20) - 5, 10)


def test_empty_objects(s3: S3):
    s3.put("empty", b"")
    obj = s3.get("empty")
    assert (obj.exists, obj.downloaded, obj.blob, obj.size) == (True, True, b"", 0)
    assert obj.range_info == RangeInfo(0, 0, 0)


def test_a_local_write_error_is_not_a_missing_object(s3: S3):
    s3.put("k", "v")
    os.rmdir(s3._tmpdir)  # the download directory vanished under the client
    with pytest.raises(HeadwaterS3Exception, match=r"Writing the download to .*obj\.0 failed: No such file"):
        s3.get("k", return_missing=True)


def test_works_from_inside_a_running_event_loop(s3: S3):
    import asyncio

    async def notebook_cell() -> str:  # Jupyter runs cells inside an event loop
        s3.put("nb", "from a loop")
        return s3.get("nb").text

    assert asyncio.run(notebook_cell()) == "from a loop"


def test_importing_s3_does_not_load_obstore():
    import subprocess
    import sys

    code = "from headwater import S3; import sys; print('obstore' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_s3_tools_work_in_a_fork_after_the_parent_used_them(s3: S3):
    """obstore's runtime does not survive fork; the child gets a private copy of the library
    (store/s3/forksafe.py) instead of hanging."""
    s3.put("k", "v")  # obstore's runtime now runs in this process
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report what happened through the pipe, then leave at once
        os.close(r)
        signal.alarm(30)  # a hang would be the bug: die rather than block the suite
        try:
            s3.put("from-child", "c")
            msg = s3.get("k").text + s3.get("from-child").text
        except BaseException as e:  # noqa: BLE001 - anything else is reported as a failure
            msg = repr(e)
        os.write(w, msg.encode())
        os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        msg = f.read()
    os.waitpid(pid, 0)
    assert msg == "vc"
    assert s3.get("k").text == "v" and s3.get("from-child").text == "c"  # the parent goes on


def test_s3_tools_in_a_fresh_process_that_imported_obstore_first(s3: S3, s3_env, tmp_path):
    import subprocess
    import sys

    code = ("import obstore, sys; from headwater import S3\n"
            "with S3(s3root=sys.argv[1], tmproot=sys.argv[2]) as s3:\n"
            "    s3.put('fresh', 'ok'); print(s3.get('fresh').text)")
    out = subprocess.run([sys.executable, "-c", code, s3._s3root, str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_encryption_is_requested_on_upload(root: str, s3_bucket: str, s3_server, tmp_path: Path):
    with S3(s3root=root, tmproot=str(tmp_path), encryption="AES256") as s3:
        s3.put("sealed", "secret")
        s3.put_many([S3PutObject("sealed2", "s2")])
        assert s3.get("sealed").text == "secret"
    for key in ("data/sealed", "data/sealed2"):
        assert s3_server.boto3().head_object(Bucket=s3_bucket, Key=key)["ServerSideEncryption"] == "AES256"


@pytest.mark.parametrize("retries", ["3", "0"])
def test_a_download_cut_mid_body_resumes(retries: str, s3_bucket: str, s3_server, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch):
    from datatools.cutproxy import CutProxy

    big = os.urandom(3 << 20)
    s3_server.boto3().put_object(Bucket=s3_bucket, Key="data/big", Body=big)
    proxy = CutProxy(int(s3_server.url.rsplit(":", 1)[1]), cut_after=(1 << 20) + 777)
    monkeypatch.setenv("HEADWATER_S3_ENDPOINT_URL", proxy.url)
    monkeypatch.setenv("HEADWATER_S3_RETRY_COUNT", retries)
    try:
        with S3(s3root=f"s3://{s3_bucket}/data", tmproot=str(tmp_path)) as s3:
            if retries == "0":
                with pytest.raises(HeadwaterS3Exception, match=r"GET s3://.*/data/big failed"):
                    s3.get("big")
            else:
                assert s3.get("big").blob == big
    finally:
        proxy.stop()
    assert proxy.cuts_left == 0  # the response really was cut
