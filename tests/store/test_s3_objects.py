"""The S3 object store beyond the ObjectStore contract: forked tasks, the read cache,
damaged objects, and clear errors for a missing bucket, bad credentials and denied access."""

from __future__ import annotations

import os
import time
import uuid

import numpy as np
import pytest

from headwater.config import load_settings
from headwater.exceptions import DataCorruptionError, HeadwaterS3AccessDenied, HeadwaterS3NotFound
from headwater.store import Datastore, open_object_store
from headwater.store.s3.cache import GRACE_S
from headwater.store.s3.objects import S3ObjectStore
from s3faults import FaultProxy
from s3server import start_s3_server


@pytest.fixture
def home(tmp_path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("HEADWATER_HOME", str(tmp_path / "home"))
    return str(tmp_path / "home")


@pytest.fixture
def store(s3_bucket: str, home: str) -> S3ObjectStore:
    s = open_object_store(f"s3://{s3_bucket}/pre")
    assert isinstance(s, S3ObjectStore)
    return s


def _in_child(fn) -> int:
    """Run ``fn`` in a forked child; its exit status (0: ``fn`` returned, 1: it raised, -14: it hung)."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            import signal

            signal.alarm(60)  # a hung runtime must not hang the suite (SIGALRM ends the child)
            fn()
            code = 0
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def test_store_works_in_forked_children_after_the_parent_used_it(store: S3ObjectStore) -> None:
    assert store.put("parent", b"p") and store.get("parent") == b"p"  # obstore's runtime now runs here

    def child() -> None:
        assert store.get("parent") == b"p"
        assert store.put("child", b"c")
        with open(store.local_path("child"), "rb") as f:
            assert f.read() == b"c"

        def grandchild() -> None:  # forked after the child used its own copy of obstore
            assert store.put("grandchild", b"g") and store.get("child") == b"c"

        assert _in_child(grandchild) == 0

    assert _in_child(child) == 0
    assert store.get("child") == b"c" and store.get("grandchild") == b"g"
    assert store.list_dir("") == ["child", "grandchild", "parent"]  # the parent still works too


def test_open_writer_leaves_its_bytes_in_the_read_cache(s3_env, s3_bucket: str, home: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = FaultProxy(s3_env.url).start()
    try:
        monkeypatch.setenv("HEADWATER_S3_ENDPOINT_URL", proxy.url)
        store = open_object_store(f"s3://{s3_bucket}/pre")
        data = os.urandom(10 << 20)
        with store.open_writer("blobs/ab/w") as f:
            f.write(data)
        with open(store.local_path("blobs/ab/w"), "rb") as f:
            assert f.read() == data
        assert proxy.count("GET") == 0  # read from the file the writer spooled, not downloaded
        assert store.list_dir("tmp") == [] and os.listdir(f"{home}/cache/s3/tmp") == []
    finally:
        proxy.stop()


def test_read_cache_is_bounded_and_evicts_least_recently_used(s3_bucket: str, home: str) -> None:
    mib = 1 << 20
    store = S3ObjectStore(f"s3://{s3_bucket}/pre", settings=load_settings().with_(s3_cache_bytes=3 * mib))
    for i in range(4):
        store.put(f"k{i}", os.urandom(mib))
    paths = [store.local_path(f"k{i}") for i in range(4)]
    assert store.cache.usage() == 4 * mib  # all used within the grace period: none evicted yet
    old = time.time() - 10 * GRACE_S
    for i, p in enumerate(paths):
        os.utime(p, (old + i, old + i))  # k0 least recently used ... k3 most
    store.local_path("k1")  # a hit makes k1 the most recently used
    store.cache.evict()
    assert store.cache.usage() <= 3 * mib * 0.85
    assert not os.path.exists(paths[0]) and not os.path.exists(paths[2])
    assert os.path.exists(paths[1]) and os.path.exists(paths[3])
    with open(store.local_path("k0"), "rb") as f:  # evicted: downloaded again
        assert f.read() == store.get("k0")


def test_damaged_cached_copy_is_fetched_again(s3_bucket: str, home: str) -> None:
    ds = Datastore(f"s3://{s3_bucket}/pre")
    arr = np.arange(100_000)
    ref = ds.content.save(arr)
    path = ds.objects.local_path(f"blobs/{ref['key'][:2]}/{ref['key']}")
    with open(path, "r+b") as f:
        f.seek(-8, os.SEEK_END)
        f.write(b"\xff" * 8)  # the local disk damaged the copy; the object in S3 is good
    assert np.array_equal(ds.content.load(ref), arr)
    assert ds.objects.list_dir("quarantine") == []


def test_damaged_object_in_s3_is_quarantined(s3_env, s3_bucket: str, home: str) -> None:
    ds = Datastore(f"s3://{s3_bucket}/pre")
    arr = np.arange(100_000)
    ref = ds.content.save(arr)
    bkey = f"blobs/{ref['key'][:2]}/{ref['key']}"
    good = ds.objects.get(bkey)
    s3 = s3_env.boto3()
    s3.delete_object(Bucket=s3_bucket, Key=f"pre/{bkey}")
    s3.put_object(Bucket=s3_bucket, Key=f"pre/{bkey}", Body=good[:-8] + b"\xff" * 8)
    ds.objects.cache.discard(ds.objects._cache_path(bkey))
    with pytest.raises(DataCorruptionError):
        ds.content.load(ref)
    assert not ds.objects.exists(bkey) and len(ds.objects.list_dir("quarantine")) == 1
    assert ds.content.save(arr) == ref  # saving again stores good bytes
    assert np.array_equal(ds.content.load(ref), arr)


def test_missing_bucket_fails_at_once_naming_it(s3_env, home: str) -> None:
    bucket = f"hw-missing-{uuid.uuid4().hex[:8]}"
    store = open_object_store(f"s3://{bucket}/pre")
    msg = rf"s3://{bucket}/pre/k failed: the bucket '{bucket}' does not exist"
    with pytest.raises(HeadwaterS3NotFound, match=rf"PUT {msg}") as e:
        store.put("k", b"x")
    assert "Create the bucket" in e.value.hint
    with pytest.raises(HeadwaterS3NotFound, match=rf"GET {msg}"):
        store.get("k")
    with pytest.raises(HeadwaterS3NotFound, match=rf"LIST s3://{bucket}/pre failed: the bucket"):
        store.root_exists()
    with pytest.raises(HeadwaterS3NotFound, match=rf"LIST s3://{bucket}/pre/runs failed: the bucket"):
        store.list_dir("runs")


@pytest.fixture(scope="module")
def auth_server():
    """A second moto server that checks credentials (after 3 unchecked setup requests)."""
    saved = os.environ.get("INITIAL_NO_AUTH_ACTION_COUNT")
    os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = "3"
    try:
        server = start_s3_server()
    finally:
        if saved is None:
            del os.environ["INITIAL_NO_AUTH_ACTION_COUNT"]
        else:
            os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = saved
    try:
        import boto3

        iam = boto3.client("iam", endpoint_url=server.url, region_name="us-east-1",
                           aws_access_key_id="x", aws_secret_access_key="x")
        iam.create_user(UserName="nobody")  # a user with no policy: every S3 request is denied
        key = iam.create_access_key(UserName="nobody")["AccessKey"]
        server.boto3().create_bucket(Bucket="locked")
        server.nobody = (key["AccessKeyId"], key["SecretAccessKey"])  # type: ignore[attr-defined]
        yield server
    finally:
        server.stop()


def test_bad_credentials_fail_at_once(auth_server, home: str, monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = FaultProxy(auth_server.url).start()
    try:
        for k, v in auth_server.env().items():
            monkeypatch.setenv(k, v)
        monkeypatch.setenv("HEADWATER_S3_ENDPOINT_URL", proxy.url)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAUNKNOWN000000000")
        store = open_object_store("s3://locked/pre")
        with pytest.raises(HeadwaterS3AccessDenied, match=r"PUT s3://locked/pre/k failed: the S3 credentials were "
                                                          r"refused") as e:
            store.put("k", b"x")
        assert "AWS_ACCESS_KEY_ID" in e.value.hint
        assert proxy.count("PUT") == 1  # not retried
    finally:
        proxy.stop()


def test_access_denied_fails_at_once(auth_server, home: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in auth_server.env().items():
        monkeypatch.setenv(k, v)
    key_id, secret = auth_server.nobody
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    store = open_object_store("s3://locked/pre")
    with pytest.raises(HeadwaterS3AccessDenied, match=r"GET s3://locked/pre/k failed: access denied") as e:
        store.get("k")
    assert "lack permission" in e.value.hint
    with pytest.raises(HeadwaterS3AccessDenied, match=r"LIST s3://locked/pre failed: access denied"):
        store.root_exists()


def test_listing_many_keys_takes_one_request_per_thousand(s3_env, s3_bucket: str, home: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    s3 = s3_env.boto3()
    for i in range(1050):
        s3.put_object(Bucket=s3_bucket, Key=f"pre/runs/F/{i:06d}/_run.json", Body=b"{}")
    proxy = FaultProxy(s3_env.url).start()
    try:
        monkeypatch.setenv("HEADWATER_S3_ENDPOINT_URL", proxy.url)
        store = open_object_store(f"s3://{s3_bucket}/pre")
        keys = list(store.iter_keys("runs/F"))
        assert len(keys) == 1050 and keys == sorted(keys)
        assert proxy.count("GET", "list-type=2") == 2
        newer = list(store.iter_keys("runs/F", start_after="runs/F/000999/_run.json"))
        assert newer == keys[1000:] and proxy.count("GET", "list-type=2") == 3  # starts where it left off
        assert len(store.list_dir("runs/F")) == 1050 and proxy.count("GET", "list-type=2") == 5
    finally:
        proxy.stop()


@pytest.mark.parametrize("how", ["delete", "delete_many"])
def test_deleting_discards_the_cached_copy_and_a_partial_one(store: S3ObjectStore, how: str) -> None:
    from headwater.store.s3.ranged import PARTIAL

    store.put("blobs/ab/abc", b"x" * 100)
    path = store.local_path("blobs/ab/abc")  # cached whole
    with open(path + PARTIAL, "wb") as f:  # and, as a ranged reader leaves it, in part
        f.write(b"x" * 10)
    if how == "delete":
        store.delete("blobs/ab/abc")
    else:
        store.delete_many(["blobs/ab/abc"])
    assert not os.path.exists(path) and not os.path.exists(path + PARTIAL)
