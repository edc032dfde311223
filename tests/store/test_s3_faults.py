"""The S3 object store against a server that fails some requests (tests/s3faults.py):
transient faults (throttling, 5xx, reset connections) are retried and the data comes
through intact; permanent ones fail at once, naming the operation, bucket and key."""

from __future__ import annotations

import os

import pytest

from headwater.exceptions import HeadwaterS3AccessDenied
from headwater.store import open_object_store
from headwater.store.objects import ObjectStore
from s3faults import Fault, FaultProxy

TRANSIENT = [Fault.SLOW_DOWN, Fault.INTERNAL, Fault.RESET]


@pytest.fixture
def proxy(s3_env) -> FaultProxy:
    p = FaultProxy(s3_env.url).start()
    yield p
    p.stop()


@pytest.fixture
def store(proxy: FaultProxy, s3_bucket: str, tmp_path, monkeypatch: pytest.MonkeyPatch) -> ObjectStore:
    monkeypatch.setenv("HEADWATER_S3_ENDPOINT_URL", proxy.url)
    monkeypatch.setenv("HEADWATER_HOME", str(tmp_path / "home"))
    return open_object_store(f"s3://{s3_bucket}/p")


def _is(method: str, fragment: str = ""):
    return lambda m, p: m == method and fragment in p


@pytest.mark.parametrize("fault", TRANSIENT, ids=lambda f: f.name)
def test_small_put_get_list_survive_transient_faults(store: ObjectStore, proxy: FaultProxy, fault: Fault) -> None:
    proxy.fail(fault, times=2, when=_is("PUT", "/p/small"))
    assert store.put("small", b"payload") is True
    proxy.fail(fault, times=2, when=_is("GET", "/p/small"))
    assert store.get("small") == b"payload"
    proxy.fail(fault, times=2, when=_is("GET", "list-type=2"))
    assert store.list_dir("") == ["small"]
    assert proxy.pending() == 0  # every planned fault happened...
    assert proxy.count("PUT", "/p/small") == 3  # ...and each failed request was sent again
    assert proxy.count("GET", "list-type=2") == 3


@pytest.mark.parametrize("fault", TRANSIENT, ids=lambda f: f.name)
def test_multipart_upload_and_cached_download_survive_transient_faults(
        store: ObjectStore, proxy: FaultProxy, fault: Fault) -> None:
    data = os.urandom(20 << 20)  # three parts
    proxy.fail(fault, times=1, when=_is("PUT", "partNumber=2"))
    proxy.fail(fault, times=1, when=_is("POST", "uploadId="))  # CompleteMultipartUpload
    assert store.put("blobs/ab/big", [memoryview(data)[:7], memoryview(data)[7:]]) is True
    store.cache.discard(store._cache_path("blobs/ab/big"))  # type: ignore[attr-defined]
    proxy.fail(fault, times=1, when=_is("GET", "/p/blobs/ab/big"))
    with open(store.local_path("blobs/ab/big"), "rb") as f:
        assert f.read() == data
    assert proxy.pending() == 0


def test_access_denied_is_not_retried(store: ObjectStore, proxy: FaultProxy) -> None:
    proxy.fail(Fault.ACCESS_DENIED, times=100, when=_is("GET", "/p/secret"))
    with pytest.raises(HeadwaterS3AccessDenied, match=r"GET s3://[a-z0-9-]+/p/secret failed: access denied"):
        store.get("secret")
    assert proxy.count("GET", "/p/secret") == 1


def test_a_fault_that_persists_ends_in_an_error_naming_the_key(
        store: ObjectStore, proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch) -> None:
    from headwater.exceptions import HeadwaterS3Exception

    monkeypatch.setenv("HEADWATER_S3_RETRY_COUNT", "2")
    store = open_object_store(store.url)
    proxy.fail(Fault.INTERNAL, times=100, when=_is("GET", "/p/flaky"))
    with pytest.raises(HeadwaterS3Exception, match=r"GET s3://[a-z0-9-]+/p/flaky failed"):
        store.get("flaky")
    assert proxy.count("GET", "/p/flaky") == 3  # the request and its 2 retries
