"""Calls to the Kubernetes API for task Jobs: create, wait, logs, delete, list.

``JobApi`` wraps the official ``kubernetes`` client's ``BatchV1Api`` and
``CoreV1Api`` (optional extra ``kubernetes``); ``JobApi.from_config()`` builds
them from the kubeconfig or the in-cluster service account. Any object with
the same methods can stand in (the tests use a hand-written double, since no
API server can run where they run). Objects are handled as plain dicts.
"""

from __future__ import annotations

import enum
import functools
import json
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from ...exceptions import HeadwaterException
from .job import CONTAINER, LABEL_PREFIX
from .names import label_value

#: The label the Job controller puts on a Job's pods.
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
#: HTTP status of "already exists".
CONFLICT = 409
NOT_FOUND = 404
#: Seconds one call to the API may take (connecting and reading) before it fails: a dropped
#: connection must not hang the thread that made the call. A watch may stay silent for its
#: whole ``timeout`` on top of this.
REQUEST_TIMEOUT = 30.0


class KubernetesApiError(HeadwaterException):
    """The Kubernetes API refused a request (or the client is not installed)."""

    headline = "Kubernetes error"


class JobPhase(str, enum.Enum):
    """Where a task Job stands, from its status."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed out"  # activeDeadlineSeconds (@timeout) passed

    @property
    def finished(self) -> bool:
        return self in (JobPhase.SUCCEEDED, JobPhase.FAILED, JobPhase.TIMED_OUT)


def job_phase(job: dict[str, Any]) -> JobPhase:
    """The phase of a Job from its ``status`` (conditions first, then pod counts)."""
    status = job.get("status") or {}
    for cond in status.get("conditions") or ():
        if cond.get("status") != "True":
            continue
        if cond.get("type") in ("Complete", "SuccessCriteriaMet"):
            return JobPhase.SUCCEEDED
        if cond.get("type") in ("Failed", "FailureTarget"):
            return JobPhase.TIMED_OUT if cond.get("reason") == "DeadlineExceeded" else JobPhase.FAILED
    if status.get("succeeded"):
        return JobPhase.SUCCEEDED
    if status.get("failed"):
        return JobPhase.FAILED
    return JobPhase.RUNNING if status.get("active") or status.get("ready") else JobPhase.PENDING


def run_selector(flow_name: str, run_id: str | None = None, step: str | None = None, *,
                 user: str | None = None) -> str:
    """A label selector for the task Jobs of a flow (and run, step, user)."""
    parts = [f"{LABEL_PREFIX}flow={label_value(flow_name)}"]
    if user is not None:
        parts.append(f"{LABEL_PREFIX}user={label_value(user)}")
    if run_id is not None:
        parts.append(f"{LABEL_PREFIX}run={label_value(run_id)}")
    if step is not None:
        parts.append(f"{LABEL_PREFIX}step={label_value(step)}")
    return ",".join(parts)


@dataclass
class JobApi:
    """Task Jobs through the Kubernetes API.

    Parameters
    ----------
    batch, core
        ``kubernetes.client.BatchV1Api`` and ``CoreV1Api`` (or objects with their methods).
    to_dict
        Turns what the API returns into plain dicts (``ApiClient.sanitize_for_serialization``).
    sleep
        How to wait between polls (``time.sleep``).
    """

    batch: Any
    core: Any
    to_dict: Callable[[Any], Any] = lambda obj: obj
    sleep: Callable[[float], None] = time.sleep

    @classmethod
    def from_config(cls) -> "JobApi":
        """Clients for the cluster of the kubeconfig, or of the pod this runs in."""
        try:
            from kubernetes import client, config
        except ImportError:
            raise KubernetesApiError("The Kubernetes client is not installed.",
                                     hint="pip install 'headwater[kubernetes]'") from None
        try:
            config.load_incluster_config()
        except config.ConfigException:
            try:
                config.load_kube_config()
            except (config.ConfigException, OSError) as e:
                raise KubernetesApiError(f"No Kubernetes cluster is configured here: {e}",
                                         hint="Point KUBECONFIG at a kubeconfig file, or run inside a pod "
                                              "with a service account.") from None
        api = client.ApiClient()
        return cls(client.BatchV1Api(api), client.CoreV1Api(api), api.sanitize_for_serialization)

    def create(self, job: dict[str, Any]) -> dict[str, Any]:
        """Create ``job``; an existing Job of the same name (the same attempt, created before) is returned
        instead, so a retried submission never starts the attempt twice."""
        meta = job["metadata"]
        try:
            return self.to_dict(self.batch.create_namespaced_job(meta["namespace"], job, field_validation="Strict",
                                                                 _request_timeout=REQUEST_TIMEOUT))
        except Exception as e:
            if not _from_the_api(e):
                raise
            if _status(e) != CONFLICT:
                raise self._error(f"creating Job {meta['name']!r}", e) from e
        return self.read(meta["name"], meta["namespace"])

    def read(self, name: str, namespace: str) -> dict[str, Any]:
        try:
            return self.to_dict(self.batch.read_namespaced_job_status(name, namespace,
                                                                     _request_timeout=REQUEST_TIMEOUT))
        except Exception as e:
            if not _from_the_api(e):
                raise
            raise self._error(f"reading Job {name!r}", e) from e

    def wait(self, name: str, namespace: str, *, poll: float = 2.0, deadline: float | None = None) -> JobPhase:
        """Poll the Job until it finishes (or ``deadline``, a ``time.monotonic()`` value, passes)."""
        while True:
            phase = job_phase(self.read(name, namespace))
            if phase.finished or (deadline is not None and time.monotonic() >= deadline):
                return phase
            self.sleep(poll)

    def pods(self, name: str, namespace: str) -> list[dict[str, Any]]:
        """The pods of Job ``name`` (one per attempt's start; headwater's Jobs make one)."""
        try:
            found = self.to_dict(self.core.list_namespaced_pod(namespace, label_selector=f"{JOB_NAME_LABEL}={name}",
                                                               _request_timeout=REQUEST_TIMEOUT))
        except Exception as e:
            if not _from_the_api(e):
                raise
            raise self._error(f"listing the pods of Job {name!r}", e) from e
        return list(found.get("items") or ())

    def logs(self, name: str, namespace: str) -> Iterator[str]:
        """The task container's log of each pod of Job ``name``."""
        for pod in self.pods(name, namespace):
            try:
                yield self.core.read_namespaced_pod_log(pod["metadata"]["name"], namespace, container=CONTAINER,
                                                        _request_timeout=REQUEST_TIMEOUT)
            except Exception as e:
                if not _from_the_api(e):
                    raise
                if _status(e) != NOT_FOUND:
                    raise self._error(f"reading the log of Job {name!r}", e) from e

    def delete(self, name: str, namespace: str) -> bool:
        """Delete Job ``name`` and its pods (which kills a running task); False if it was already gone."""
        try:
            self.batch.delete_namespaced_job(name, namespace, propagation_policy="Background",
                                             _request_timeout=REQUEST_TIMEOUT)
        except Exception as e:
            if not _from_the_api(e):
                raise
            if _status(e) == NOT_FOUND:
                return False
            raise self._error(f"deleting Job {name!r}", e) from e
        return True

    def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        """The pods in ``namespace`` matching the label ``selector`` (a task pod carries its Job's labels)."""
        try:
            found = self.to_dict(self.core.list_namespaced_pod(namespace, label_selector=selector,
                                                               _request_timeout=REQUEST_TIMEOUT))
        except Exception as e:
            if not _from_the_api(e):
                raise
            raise self._error(f"listing pods in namespace {namespace!r}", e) from e
        return list(found.get("items") or ())

    def watch_jobs(self, namespace: str, selector: str, *, timeout: int = 30) -> Iterator[tuple[str, dict[str, Any]]]:
        """``(event type, Job)`` as the Jobs matching ``selector`` change (``ADDED``, ``MODIFIED``,
        ``DELETED``), the existing ones first as ``ADDED``; the stream ends after ``timeout`` seconds.

        Raises
        ------
        KubernetesApiError
            The watch could not be opened or broke off (the caller polls instead).
        """
        from kubernetes import watch

        w = watch.Watch()
        try:
            for event in w.stream(self.batch.list_namespaced_job, namespace, label_selector=selector,
                                  timeout_seconds=timeout,
                                  _request_timeout=(REQUEST_TIMEOUT, timeout + REQUEST_TIMEOUT)):
                if event.get("type") == "ERROR":
                    raise KubernetesApiError(f"The watch of Jobs in namespace {namespace!r} ended: "
                                             f"{event.get('raw_object')}.")
                yield event["type"], event.get("raw_object") or self.to_dict(event["object"])
        except Exception as e:
            if not _from_the_api(e):
                raise
            raise self._error(f"watching Jobs in namespace {namespace!r}", e) from e
        finally:
            w.stop()

    def list_jobs(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        """The Jobs in ``namespace`` matching the label ``selector`` (see ``run_selector``)."""
        try:
            found = self.to_dict(self.batch.list_namespaced_job(namespace, label_selector=selector,
                                                                _request_timeout=REQUEST_TIMEOUT))
        except Exception as e:
            if not _from_the_api(e):
                raise
            raise self._error(f"listing Jobs in namespace {namespace!r}", e) from e
        return list(found.get("items") or ())

    @staticmethod
    def _error(doing: str, e: BaseException) -> KubernetesApiError:
        status = _status(e)
        if not status:
            return KubernetesApiError(
                f"The Kubernetes API could not be reached when {doing}: {type(e).__name__}: {e}.",
                hint="Check that the cluster's API server is up and reachable from here (the server address "
                     "in the kubeconfig, the network, a proxy or VPN).")
        why = " ".join(filter(None, (f"HTTP {status}", getattr(e, "reason", None))))
        said = _status_message(e)
        return KubernetesApiError(f"Kubernetes refused {doing}: {why}" + (f": {said}" if said else "") + ".",
                                  hint="Check the kubeconfig context, the namespace and the service account's "
                                       "permissions on jobs and pods.")


def _status(e: BaseException) -> int | None:
    status = getattr(e, "status", None)
    return int(status) if isinstance(status, int) else None


def _status_message(e: BaseException) -> str:
    """The ``message`` of the ``Status`` the server answered with (``ApiException.body``), if any."""
    body = getattr(e, "body", None)
    if not isinstance(body, (str, bytes)):
        return ""
    try:
        status = json.loads(body)
    except ValueError:
        return ""
    message = status.get("message") if isinstance(status, dict) else None
    return message.rstrip(".") if isinstance(message, str) else ""


@functools.cache
def _transport_errors() -> tuple[type[BaseException], ...]:
    """What the client raises when it could not talk to the server (a timeout, a dropped connection)."""
    kinds: list[type[BaseException]] = [OSError]
    try:
        from urllib3.exceptions import HTTPError
    except ImportError:  # no kubernetes client installed: only a test double answers
        pass
    else:
        kinds.append(HTTPError)
    try:
        from kubernetes.client.exceptions import ApiException
    except ImportError:
        pass
    else:
        kinds.append(ApiException)
    return tuple(kinds)


def _from_the_api(e: BaseException) -> bool:
    """Whether ``e`` is the API's answer (an ``ApiException``: it has an HTTP ``status``) or a failure to
    reach it; anything else is a bug in headwater or in the client, and must keep its traceback."""
    return _status(e) is not None or isinstance(e, _transport_errors())
