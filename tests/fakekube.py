"""A fake Kubernetes API server over HTTP on a loopback port, for tests (a test double).

It is a double because no Kubernetes API server can run where these tests run.
Unlike tests/k8s_double.py (in-process objects), it speaks the REST API, so the
official ``kubernetes`` client talks to it through a kubeconfig file exactly as
to a cluster, from the test process and from the processes a test starts
(``python flow.py ...``, the Deployer).

What it keeps of a real server, for the calls headwater makes: namespaced
collections of any group/version/plural (``/api/v1/...`` and
``/apis/GROUP/VERSION/...``), create (409 ``AlreadyExists`` on a duplicate name,
``metadata.generateName``, uid, creationTimestamp, resourceVersion), get, list
with equality label selectors (``k=v``, ``k!=v``, ``k``), replace, merge and
JSON patches, delete with ``propagationPolicy`` taking a Job's pods along,
``watch=true`` streams of ADDED/MODIFIED/DELETED events, a pod's ``log``
subresource, and strict validation of what is created by a validator per
plural (``fieldValidation=Strict`` as a real server does it with its schemas).

What it does not do by itself: run anything. A test registers controllers
(``add_controller``), callables told of every create, update and delete, that
play the parts of the Job controller and kubelet or of the Argo controller.

Faults: ``fail(method, path_regex, status, times)`` makes the server answer
matching requests with a ``Status`` of that code instead (a 403 of missing RBAC,
a 500, a 503 where no watch is offered), as a real server or proxy would.
"""

from __future__ import annotations

import copy
import http
import json
import queue
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

#: The label the Job controller puts on a Job's pods.
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"


class ApiError(Exception):
    """A request the fake server refuses, answered as a Kubernetes ``Status``."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message


@dataclass(frozen=True)
class Event:
    """What a controller or a watch is told: ``type`` is ADDED, MODIFIED or DELETED."""

    type: str
    api: str  # "v1" or "GROUP/VERSION"
    plural: str
    object: dict[str, Any]


@dataclass
class Fault:
    """Requests answered with an error (``FakeKube.fail``); ``hits`` counts those answered so."""

    method: str
    pattern: re.Pattern[str]
    status: int
    times: int | None  # None: for good
    message: str
    hits: int = 0

    def take(self, method: str, target: str) -> bool:
        """Whether this fault answers the request ``method target`` (counting it if so)."""
        if method != self.method or not self.pattern.search(target):
            return False
        if self.times is not None and self.hits >= self.times:
            return False
        self.hits += 1
        return True


Controller = Callable[["FakeKube", Event], None]
Validator = Callable[[dict[str, Any]], None]


def selector_matches(labels: dict[str, str], selector: str | None) -> bool:
    """Equality-based label selector terms: ``k=v``, ``k==v``, ``k!=v``, ``k``, ``!k``."""
    for term in filter(None, (t.strip() for t in (selector or "").split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key) != value:
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def _merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_patch(result.get(key), value)
    return result


def _json_patch(target: dict[str, Any], ops: list[dict[str, Any]]) -> dict[str, Any]:
    doc = copy.deepcopy(target)
    for op in ops:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        parent = doc
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent.setdefault(part, {})
        last = parts[-1]
        if op["op"] in ("add", "replace"):
            if isinstance(parent, list):
                index = len(parent) if last == "-" else int(last)
                if op["op"] == "add":
                    parent.insert(index, op["value"])
                else:
                    parent[index] = op["value"]
            else:
                parent[last] = op["value"]
        elif op["op"] == "remove":
            del parent[int(last) if isinstance(parent, list) else last]
        else:
            raise ApiError(422, "Invalid", f"unsupported JSON patch op {op['op']!r}")
    return doc


class FakeKube:
    """The server's state and its HTTP front. Use as a context manager or call ``stop()``."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._lock = threading.RLock()
        self._objects: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        self._version = 0
        self._controllers: list[Controller] = []
        self._validators: dict[tuple[str, str], Validator] = {}
        self._watchers: list[tuple[str, str, str | None, queue.Queue]] = []
        self.logs: dict[tuple[str, str], str] = {}
        self.calls: list[tuple[str, str]] = []
        self._faults: list[Fault] = []
        self._http = ThreadingHTTPServer((host, 0), _handler_for(self))
        self._http.daemon_threads = True
        self.url = f"http://{host}:{self._http.server_address[1]}"
        self._thread = threading.Thread(target=self._http.serve_forever, name="fakekube", daemon=True)
        self._thread.start()

    # -- test-facing -------------------------------------------------------------------------------
    def stop(self) -> None:
        for *_, q in list(self._watchers):
            q.put(None)
        self._http.shutdown()
        self._http.server_close()

    def __enter__(self) -> "FakeKube":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def write_kubeconfig(self, path: Path, namespace: str = "default") -> Path:
        """A kubeconfig whose current context is this server (no authentication)."""
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "tester", "user": {"token": "fake-token"}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "tester",
                                                      "namespace": namespace}}],
        }
        path.write_text(json.dumps(config))  # JSON is YAML
        return path

    def add_controller(self, controller: Controller) -> None:
        """``controller(server, event)`` is called (on the request's thread, after the change) for every
        create, update and delete; it must not block for long (start a thread for long work)."""
        self._controllers.append(controller)

    def set_validator(self, api: str, plural: str, validator: Validator) -> None:
        """Check every object created or replaced in ``api``/``plural``; raise ``ApiError`` (or anything,
        answered as 422 Invalid) to refuse it."""
        self._validators[(api, plural)] = validator

    def fail(self, method: str, path_regex: str, status: int, times: int | None = None, *,
             message: str | None = None) -> Fault:
        """Answer the next ``times`` (None: every) ``method`` requests whose path and query match
        ``path_regex`` (``re.search``: ``r"/jobs\\?.*watch=true"`` picks a watch of Jobs) with a
        ``Status`` of code ``status``; earlier faults are looked at first."""
        phrase = http.HTTPStatus(status).phrase
        fault = Fault(method.upper(), re.compile(path_regex), status, times,
                      message or f"the test server refuses {method.upper()} {path_regex}: {phrase}")
        with self._lock:
            self._faults.append(fault)
        return fault

    def _fault_for(self, method: str, target: str) -> Fault | None:
        with self._lock:
            return next((f for f in self._faults if f.take(method, target)), None)

    def objects(self, api: str, plural: str, namespace: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [copy.deepcopy(o) for (a, p, ns, _), o in self._objects.items()
                    if a == api and p == plural and (namespace is None or ns == namespace)]

    def get(self, api: str, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            obj = self._objects.get((api, plural, namespace, name))
            return copy.deepcopy(obj) if obj is not None else None

    def create(self, api: str, plural: str, namespace: str, body: dict[str, Any], *,
               validate: bool = True) -> dict[str, Any]:
        """Create an object as a controller would (a Job's pod, a Workflow from a CronWorkflow)."""
        with self._lock:
            obj = copy.deepcopy(body)
            meta = obj.setdefault("metadata", {})
            if not meta.get("name"):
                if not meta.get("generateName"):
                    raise ApiError(422, "Invalid", "metadata.name or metadata.generateName is required")
                meta["name"] = meta["generateName"] + secrets.token_hex(3)[:5]
            key = (api, plural, namespace, meta["name"])
            if key in self._objects:
                raise ApiError(409, "AlreadyExists", f'{plural} "{meta["name"]}" already exists')
            if validate and (api, plural) in self._validators:
                self._validate(api, plural, obj)
            meta["namespace"] = namespace
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("creationTimestamp", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
            self._stamp(obj)
            self._objects[key] = obj
            created = copy.deepcopy(obj)
        self._notify(Event("ADDED", api, plural, created))
        return created

    def update(self, api: str, plural: str, namespace: str, name: str,
               change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        """Change an object in place under the lock (as a controller updates status)."""
        with self._lock:
            obj = self._require(api, plural, namespace, name)
            change(obj)
            self._stamp(obj)
            updated = copy.deepcopy(obj)
        self._notify(Event("MODIFIED", api, plural, updated))
        return updated

    def delete(self, api: str, plural: str, namespace: str, name: str,
               propagation: str | None = None) -> dict[str, Any]:
        with self._lock:
            obj = self._require(api, plural, namespace, name)
            del self._objects[(api, plural, namespace, name)]
            dependents = []
            if propagation in ("Background", "Foreground"):
                uid = obj["metadata"].get("uid")
                for (a, p, ns, n), o in list(self._objects.items()):
                    owners = o["metadata"].get("ownerReferences") or ()
                    if ns == namespace and any(r.get("uid") == uid for r in owners):
                        dependents.append((a, p, ns, n))
        self._notify(Event("DELETED", api, plural, copy.deepcopy(obj)))
        for a, p, ns, n in dependents:
            try:
                self.delete(a, p, ns, n, propagation)
            except ApiError:
                pass  # already gone
        return obj

    # -- internals ---------------------------------------------------------------------------------
    def _require(self, api: str, plural: str, namespace: str, name: str) -> dict[str, Any]:
        obj = self._objects.get((api, plural, namespace, name))
        if obj is None:
            raise ApiError(404, "NotFound", f'{plural} "{name}" not found')
        return obj

    def _stamp(self, obj: dict[str, Any]) -> None:
        self._version += 1
        obj["metadata"]["resourceVersion"] = str(self._version)

    def _validate(self, api: str, plural: str, obj: dict[str, Any]) -> None:
        try:
            self._validators[(api, plural)](obj)
        except ApiError:
            raise
        except Exception as e:
            raise ApiError(422, "Invalid", f"{plural} is invalid: {e}") from e

    def _notify(self, event: Event) -> None:
        for api, plural, selector, q in list(self._watchers):
            labels = event.object["metadata"].get("labels") or {}
            if api == event.api and plural == event.plural and selector_matches(labels, selector):
                q.put(event)
        for controller in list(self._controllers):
            controller(self, event)

    def _watch(self, api: str, plural: str, namespace: str | None, selector: str | None,
               timeout: float, write: Callable[[dict[str, Any]], None]) -> None:
        q: queue.Queue = queue.Queue()
        entry = (api, plural, selector, q)
        with self._lock:
            self._watchers.append(entry)
            current = [o for o in self.objects(api, plural, namespace)
                       if selector_matches(o["metadata"].get("labels") or {}, selector)]
        try:
            for obj in current:
                write({"type": "ADDED", "object": obj})
            end = time.monotonic() + timeout
            while (left := end - time.monotonic()) > 0:
                try:
                    event = q.get(timeout=min(left, 0.5))
                except queue.Empty:
                    continue
                if event is None:
                    return
                if namespace is None or event.object["metadata"].get("namespace") == namespace:
                    write({"type": event.type, "object": event.object})
        finally:
            with self._lock:
                self._watchers.remove(entry)


def _parse_path(path: str) -> tuple[str, str | None, str, str | None, str | None]:
    """(api, namespace, plural, name, subresource) of an API path."""
    parts = [p for p in path.split("/") if p]
    if parts[:2] == ["api", "v1"]:
        api, rest = "v1", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        api, rest = f"{parts[1]}/{parts[2]}", parts[3:]
    else:
        raise ApiError(404, "NotFound", f"the server could not find the requested resource {path}")
    namespace = None
    if rest[:1] == ["namespaces"] and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    if not rest or len(rest) > 3:
        raise ApiError(404, "NotFound", f"the server could not find the requested resource {path}")
    plural = rest[0]
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else None
    return api, namespace, plural, name, sub


def _kind_of_list(plural: str) -> str:
    singular = plural[:-1] if plural.endswith("s") else plural
    return singular[:1].upper() + singular[1:] + "List"


def _handler_for(server: FakeKube) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _reply(self, code: int, body: Any, content_type: str = "application/json") -> None:
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _handle(self, method: str) -> None:
            url = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            server.calls.append((method, url.path))
            fault = server._fault_for(method, self.path)
            if fault is not None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))  # the connection is reused
                reason = http.HTTPStatus(fault.status).phrase.replace(" ", "")
                return self._reply(fault.status, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                                  "status": "Failure", "message": fault.message,
                                                  "reason": reason, "code": fault.status})
            try:
                api, ns, plural, name, sub = _parse_path(url.path)
                if method == "GET" and name is None and query.get("watch") in ("true", "1"):
                    return self._stream(api, plural, ns, query)
                code, body = self._dispatch(method, api, ns, plural, name, sub, query)
                if isinstance(body, str):
                    return self._reply(code, body, "text/plain")
                self._reply(code, body)
            except ApiError as e:
                self._reply(e.code, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                     "message": e.message, "reason": e.reason, "code": e.code})

        def _body(self) -> Any:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"null")
            # A real API server refuses an object written to another namespace than its own.
            meta = body.get("metadata") if isinstance(body, dict) else None
            ns = _parse_path(urlsplit(self.path).path)[1]
            if self.command in ("POST", "PUT") and isinstance(meta, dict) and meta.get("namespace") \
                    and ns is not None and meta["namespace"] != ns:
                raise ApiError(400, "BadRequest", "the namespace of the provided object does not match the "
                                                  "namespace sent on the request")
            return body

        def _dispatch(self, method: str, api: str, ns: str | None, plural: str, name: str | None,
                      sub: str | None, query: dict[str, str]) -> tuple[int, Any]:
            if name is None:
                if method == "GET":
                    items = [o for o in server.objects(api, plural, ns)
                             if selector_matches(o["metadata"].get("labels") or {}, query.get("labelSelector"))]
                    return 200, {"apiVersion": api, "kind": _kind_of_list(plural),
                                 "metadata": {"resourceVersion": str(server._version)}, "items": items}
                if method == "POST" and ns is not None:
                    body = self._body()
                    if query.get("dryRun"):
                        if (api, plural) in server._validators:
                            server._validate(api, plural, body)
                        return 201, body
                    return 201, server.create(api, plural, ns, body)
                raise ApiError(405, "MethodNotAllowed", f"{method} on a collection")
            if ns is None:
                raise ApiError(404, "NotFound", "cluster-scoped objects are not served")
            if sub == "log":
                if server.get(api, plural, ns, name) is None:
                    raise ApiError(404, "NotFound", f'pods "{name}" not found')
                return 200, server.logs.get((ns, name), "")
            if method == "GET":
                obj = server.get(api, plural, ns, name)
                if obj is None:
                    raise ApiError(404, "NotFound", f'{plural} "{name}" not found')
                return 200, obj
            if method == "PUT":
                body = self._body()
                if (api, plural) in server._validators and sub != "status":
                    server._validate(api, plural, body)
                return 200, server.update(api, plural, ns, name, lambda o: (o.clear(), o.update(body)))
            if method == "PATCH":
                patch = self._body()

                def apply(obj: dict[str, Any]) -> None:
                    new = _json_patch(obj, patch) if isinstance(patch, list) else _merge_patch(obj, patch)
                    obj.clear()
                    obj.update(new)
                return 200, server.update(api, plural, ns, name, apply)
            if method == "DELETE":
                body = self._body() or {}
                policy = query.get("propagationPolicy") or body.get("propagationPolicy")
                server.delete(api, plural, ns, name, policy)
                return 200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
            raise ApiError(405, "MethodNotAllowed", method)

        def _stream(self, api: str, plural: str, ns: str | None, query: dict[str, str]) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()

            def write(event: dict[str, Any]) -> None:
                line = (json.dumps(event) + "\n").encode()
                self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
                self.wfile.flush()

            try:
                server._watch(api, plural, ns, query.get("labelSelector"),
                              float(query.get("timeoutSeconds") or 30), write)
                self.wfile.write(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass

        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

        def do_PUT(self) -> None:
            self._handle("PUT")

        def do_PATCH(self) -> None:
            self._handle("PATCH")

        def do_DELETE(self) -> None:
            self._handle("DELETE")

    return Handler
