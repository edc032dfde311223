"""A real S3 API server for the tests: ``moto[server]`` as a subprocess on 127.0.0.1
and a free port, one per test session (see the ``s3_server`` fixture in conftest.py).

The server is real HTTP (it enforces ``If-None-Match: *`` create-only writes), so the
code under test talks S3 exactly as it would to AWS; only the endpoint differs.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass

#: Credentials the moto server accepts (any non-empty pair works).
ACCESS_KEY = "testing"
SECRET_KEY = "testing"
REGION = "us-east-1"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@dataclass
class S3Server:
    """A running moto server: its endpoint URL and process."""

    url: str
    proc: subprocess.Popen

    def env(self) -> dict[str, str]:
        """Environment variables that point headwater (and boto3/metaflow) at this server."""
        return {
            "HEADWATER_S3_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
        }

    def boto3(self):
        """A boto3 S3 client for this server (to set up and inspect buckets in tests)."""
        import boto3

        return boto3.client("s3", endpoint_url=self.url, region_name=REGION,
                            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)

    def new_bucket(self, prefix: str = "hw") -> str:
        """Create a bucket with a fresh name and return the name."""
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        self.boto3().create_bucket(Bucket=name)
        return name

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start_s3_server(host: str = "127.0.0.1", timeout: float = 60.0) -> S3Server:
    """Start moto's server (``motoserve.py``) on ``host`` and a free port; return once it accepts connections."""
    port = free_port(host)
    # motoserve.py: moto's server, with conditional writes made atomic as they are on S3.
    serve = os.path.join(os.path.dirname(os.path.abspath(__file__)), "motoserve.py")
    proc = subprocess.Popen([sys.executable, serve, "-H", host, "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "MOTO_ALLOW_NONEXISTENT_REGION": "true"})
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((host, port), timeout=0.2).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"the moto S3 server did not start on {host}:{port}") from None
            time.sleep(0.05)
    return S3Server(url=f"http://{host}:{port}", proc=proc)
