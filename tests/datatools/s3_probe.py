"""One script, two engines: ``python s3_probe.py metaflow|headwater s3://bucket/root tmpdir`` runs the
same S3 data-tool calls with ``metaflow.S3`` or ``headwater.S3`` and prints what came back as JSON,
with the bucket, local paths and engine names normalised, for test_s3_differential.py to compare."""

import io
import json
import os
import sys

engine, root, tmp = sys.argv[1], sys.argv[2], sys.argv[3]
if engine == "metaflow":
    from metaflow import S3
    from metaflow.plugins.datatools.s3 import S3GetObject, S3PutObject
else:
    from headwater import S3
    from headwater.datatools import S3GetObject, S3PutObject

bucket = root.split("/")[2]
out = []


def norm(value):
    if hasattr(value, "url") and hasattr(value, "downloaded"):
        return {"url": value.url, "key": value.key, "prefix": value.prefix, "exists": value.exists,
                "downloaded": value.downloaded, "size": value.size, "has_info": value.has_info,
                "content_type": value.content_type, "metadata": value.metadata,
                "range_info": list(value.range_info) if value.range_info else None,
                "last_modified": type(value.last_modified).__name__, "text": value.text, "repr": repr(value)}
    if isinstance(value, (list, tuple)):
        return [norm(v) for v in value]
    return value


def call(label, fn):
    try:
        result = norm(fn())
    except Exception as e:  # the class, not the wording: each engine words its own messages
        result = {"error": type(e).__name__.replace("Metaflow", "Engine").replace("Headwater", "Engine")}
    out.append([label, json.loads(json.dumps(result).replace(bucket, "BUCKET"))])


local = os.path.join(tmp, "local.txt")
with open(local, "w") as f:
    f.write("from a file")
with S3(s3root=root, tmproot=tmp) as s3:
    call("put str", lambda: s3.put("a/x.txt", "hello"))
    call("put bytes", lambda: s3.put("a/b/y.bin", b"0123456789"))
    call("put meta", lambda: s3.put("a/c/z.json", "{}", content_type="application/json", metadata={"k": [1]}))
    call("put fileobj", lambda: s3.put("a/d/e/f.txt", io.BytesIO(b"fileobj")))
    call("put keep", lambda: s3.put("a/x.txt", "changed", overwrite=False))
    call("put bad", lambda: s3.put("bad", 123))
    call("get", lambda: s3.get("a/x.txt"))
    call("get no info", lambda: s3.get("a/x.txt", return_info=False))
    call("get meta", lambda: s3.get("a/c/z.json"))
    call("get missing", lambda: s3.get("nope"))
    call("get missing ok", lambda: s3.get("nope", return_missing=True))
    call("ranges", lambda: s3.get_many([S3GetObject("a/b/y.bin", 2, 3), S3GetObject("a/b/y.bin", 4, None),
                                        S3GetObject("a/b/y.bin", 0, -3), S3GetObject("a/b/y.bin", 8, 10)]))
    call("range past end", lambda: s3.get(S3GetObject("a/b/y.bin", 100, 5)))
    call("get_many missing ok", lambda: s3.get_many(["a/x.txt", "nope"], return_missing=True))
    call("get_many missing", lambda: s3.get_many(["a/x.txt", "nope"]))
    call("list_paths", lambda: s3.list_paths())
    call("list_paths a", lambda: s3.list_paths(["a"]))
    call("list_recursive", lambda: s3.list_recursive())
    call("list_recursive some", lambda: s3.list_recursive(["a/b", "a/c"]))
    call("get_recursive", lambda: s3.get_recursive(["a/b", "a/d"]))
    call("get_recursive info", lambda: s3.get_recursive(["a/c"], return_info=True))
    call("get_all", lambda: s3.get_all())
    call("info", lambda: s3.info("a/c/z.json"))
    call("info missing ok", lambda: s3.info("nope", return_missing=True))
    call("info_many", lambda: s3.info_many(["a/x.txt", "nope"], return_missing=True))
    call("put_many", lambda: s3.put_many([("p/1", "one"), S3PutObject("p/2", "two", metadata={"a": "b"})]))
    call("put_many keep", lambda: s3.put_many([("p/1", "ONE"), ("p/3", "three")], overwrite=False))
    call("put_files", lambda: s3.put_files([("f/1", local), S3PutObject("f/2", path=local, content_type="text/x")]))
    call("get_many puts", lambda: s3.get_many(["p/1", "p/2", "p/3", "f/1", "f/2"]))
    call("full url", lambda: s3.get(root + "/a/x.txt"))
with S3(tmproot=tmp) as bare:
    call("bare url", lambda: bare.get(root + "/a/x.txt"))
    call("bare key", lambda: bare.get("a/x.txt"))
    call("bare get_all", lambda: bare.get_all())
    call("missing bucket", lambda: bare.get("s3://no-such-bucket-probe/k"))
call("bad root", lambda: S3(s3root="http://x/y", tmproot=tmp))
print(json.dumps(out))
