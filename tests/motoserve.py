"""Run the moto S3 server with S3's atomic conditional writes (a test helper, run as a script
by s3server.py).

moto checks ``If-None-Match: *`` and then stores the object in two steps without a lock,
so two writers of one key that race (threads of the threaded server) can both "win";
real S3 decides conditional writes atomically. This script holds one lock around moto's
PutObject and its POST handler (CompleteMultipartUpload), which makes the check and the
write one step, then starts moto's server with the command line it was given.
"""

from __future__ import annotations

import functools
import sys
import threading

from moto.s3.responses import S3Response
from moto.server import main

_lock = threading.Lock()


def _atomic(method):
    @functools.wraps(method)
    def locked(*args, **kwargs):
        with _lock:
            return method(*args, **kwargs)

    return locked


S3Response.put_object = _atomic(S3Response.put_object)
S3Response._key_response_post = _atomic(S3Response._key_response_post)

if __name__ == "__main__":
    main(sys.argv[1:])
