"""A fault-injecting HTTP proxy in front of the test S3 server (test helper).

``FaultProxy(upstream)`` listens on 127.0.0.1 and a free port and forwards every
request to ``upstream`` (the moto server), except those a planned fault matches: it
answers them with 503 SlowDown, 500 InternalError or 403 AccessDenied, or resets the
connection without answering. Every request is logged, so a test can count how often
the client asked (retries of a transient fault; none of a permanent one).
"""

from __future__ import annotations

import enum
import http.client
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


class Fault(enum.Enum):
    """What the proxy does instead of forwarding a request."""

    SLOW_DOWN = (503, "SlowDown", "Please reduce your request rate.")
    INTERNAL = (500, "InternalError", "We encountered an internal error. Please try again.")
    ACCESS_DENIED = (403, "AccessDenied", "Access Denied")
    RESET = (0, "", "")  # close the connection with a TCP reset, no response


#: A request as the proxy saw it: method, path (with query), and the status returned (0: reset).
Request = tuple[str, str, int]


@dataclass
class _Plan:
    fault: Fault
    times: int
    match: Callable[[str, str], bool]


@dataclass
class FaultProxy:
    """A proxy to ``upstream`` (``http://host:port``); start it with ``start()``."""

    upstream: str
    log: list[Request] = field(default_factory=list)
    _plans: list[_Plan] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the proxy first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def fail(self, fault: Fault, *, times: int = 1, when: Callable[[str, str], bool] = lambda m, p: True) -> None:
        """Answer the next ``times`` requests for which ``when(method, path)`` holds with ``fault``."""
        with self._lock:
            self._plans.append(_Plan(fault, times, when))

    def pending(self) -> int:
        """How many planned faults have not happened yet."""
        with self._lock:
            return sum(p.times for p in self._plans)

    def count(self, method: str | None = None, contains: str = "") -> int:
        """Requests logged with ``method`` (any if None) whose path contains ``contains``."""
        with self._lock:
            return sum(1 for m, p, _ in self.log if (method is None or m == method) and contains in p)

    def _take(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for plan in self._plans:
                if plan.times > 0 and plan.match(method, path):
                    plan.times -= 1
                    if plan.times == 0:
                        self._plans.remove(plan)
                    return plan.fault
        return None

    def _record(self, method: str, path: str, status: int) -> None:
        with self._lock:
            self.log.append((method, path, status))

    def start(self) -> "FaultProxy":
        proxy = self
        target = urlsplit(self.upstream)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            upstream: http.client.HTTPConnection | None = None

            def log_message(self, format: str, *args: object) -> None:  # quiet
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    out = bytearray()
                    while True:
                        size = int(self.rfile.readline().split(b";")[0], 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return bytes(out)
                        out += self.rfile.read(size)
                        self.rfile.readline()
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n else b""

            def _handle(self) -> None:
                body = self._body()
                fault = proxy._take(self.command, self.path)
                if fault is Fault.RESET:
                    proxy._record(self.command, self.path, 0)
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.close_connection = True
                    return
                if fault is not None:
                    status, code, message = fault.value
                    proxy._record(self.command, self.path, status)
                    xml = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
                           f"<Message>{message}</Message><RequestId>fault</RequestId></Error>").encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(0 if self.command == "HEAD" else len(xml)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(xml)
                    return
                self._forward(body)

            def _forward(self, body: bytes) -> None:
                if self.upstream is None:
                    self.upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=120)
                conn = self.upstream
                conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for k, v in self.headers.items():
                    if k.lower() not in ("transfer-encoding", "content-length"):
                        conn.putheader(k, v)
                conn.putheader("Content-Length", str(len(body)))
                conn.endheaders(body)
                resp = conn.getresponse()
                data = resp.read()
                proxy._record(self.command, self.path, resp.status)
                self.send_response_only(resp.status, resp.reason)
                for k, v in resp.getheaders():
                    if k.lower() in ("transfer-encoding", "connection", "date", "server"):
                        continue
                    if k.lower() == "content-length" and self.command != "HEAD":
                        continue
                    self.send_header(k, v)
                if self.command != "HEAD":
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
