"""Argo Workflows objects on a Kubernetes API server: apply, submit, read, stop (internal).

``ArgoClient`` wraps the official ``kubernetes`` client's ``CustomObjectsApi``
(optional extra ``kubernetes``) for the ``argoproj.io/v1alpha1`` objects a
deployment is made of: WorkflowTemplates, CronWorkflows, Sensors and the
Workflows started from them. Objects are plain dicts. ``ArgoClient.from_config()``
builds the client from the in-cluster service account or the kubeconfig
(``KUBECONFIG``, else ``~/.kube/config``). An object is applied, read and deleted in its
own namespace (a Sensor may live apart from the workflows). Every API error (a refusal, or
a server that cannot be reached) is translated into an ``ArgoClientError`` naming the object
and the namespace; any other exception is a bug and propagates with its traceback.

Stopping a Workflow is done as Argo's own CLI does it: ``terminate`` sets
``spec.shutdown: Terminate`` and ``suspend`` / ``unsuspend`` set ``spec.suspend``;
the controller acts on them.
"""

from __future__ import annotations

import enum
import json
import os
from typing import Any

from ...exceptions import HeadwaterException
from .compile import API_VERSION
from .naming import RUN_ID_PREFIX

GROUP, VERSION = API_VERSION.split("/")
#: Argo's shutdown strategy that stops every running pod at once (``argo terminate``).
SHUTDOWN_TERMINATE = "Terminate"
NOT_FOUND = 404


class ArgoKind(str, enum.Enum):
    """The Argo objects headwater deploys or starts, with their API plural."""

    WORKFLOW_TEMPLATE = "WorkflowTemplate"
    CRON_WORKFLOW = "CronWorkflow"
    SENSOR = "Sensor"
    WORKFLOW = "Workflow"

    @property
    def plural(self) -> str:
        return self.value.lower() + "s"


class WorkflowPhase(str, enum.Enum):
    """``status.phase`` of a Workflow (Argo's values; empty while the controller has not seen it)."""

    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    ERROR = "Error"

    @property
    def finished(self) -> bool:
        return self in (WorkflowPhase.SUCCEEDED, WorkflowPhase.FAILED, WorkflowPhase.ERROR)


class ArgoClientError(HeadwaterException):
    """The Kubernetes API refused a request about an Argo object, or cannot be reached."""

    headline = "Argo Workflows error"


def workflow_phase(workflow: dict[str, Any]) -> WorkflowPhase:
    """The Workflow's phase; one the controller has not picked up yet is Pending."""
    phase = (workflow.get("status") or {}).get("phase")
    return WorkflowPhase(phase) if phase else WorkflowPhase.PENDING


def run_status(workflow: dict[str, Any], run_started: bool) -> str:
    """A run's status as Metaflow words it: the Workflow's phase, ``Error`` as ``Failed``, and ``Pending``
    while the Workflow runs but the run has not recorded itself yet (its first task has not started)."""
    phase = workflow_phase(workflow)
    if phase is WorkflowPhase.ERROR:
        return WorkflowPhase.FAILED.value
    if phase is WorkflowPhase.RUNNING and not run_started:
        return WorkflowPhase.PENDING.value
    return phase.value


def is_finished(workflow: dict[str, Any]) -> bool:
    """Whether the Workflow has ended (Argo sets ``status.finishedAt`` then)."""
    return bool((workflow.get("status") or {}).get("finishedAt")) or workflow_phase(workflow).finished


class ArgoClient:
    """Argo objects in one namespace.

    Parameters
    ----------
    api
        A ``kubernetes.client.CustomObjectsApi`` (or an object with its methods).
    namespace : str
        The Kubernetes namespace of every object.
    """

    def __init__(self, api: Any, namespace: str):
        self.api = api
        self.namespace = namespace
        self._errors = api_errors()

    @classmethod
    def from_config(cls, namespace: str, config_file: str | None = None) -> ArgoClient:
        """A client for the cluster of the pod this runs in, else of the kubeconfig ``config_file``
        (default: ``$KUBECONFIG``, else ``~/.kube/config``).

        Raises
        ------
        ArgoClientError
            The ``kubernetes`` package is missing, or no cluster is configured.
        """
        try:
            from kubernetes import client, config
        except ImportError:
            raise ArgoClientError("Talking to Argo Workflows needs the Kubernetes client, which is not "
                                  "installed.", hint="pip install 'headwater[kubernetes]'") from None
        try:
            config.load_incluster_config()
            api_client = client.ApiClient()
        except config.ConfigException:
            try:
                api_client = config.new_client_from_config(config_file=config_file or os.environ.get("KUBECONFIG"))
            except (config.ConfigException, OSError, TypeError) as e:
                raise ArgoClientError(f"No Kubernetes cluster is configured here ({e}).",
                                      hint="Point KUBECONFIG at the kubeconfig of the cluster running Argo "
                                           "Workflows, or run inside a pod with a service account.") from None
        return cls(client.CustomObjectsApi(api_client), namespace)

    # ---- one object ------------------------------------------------------------------------
    def get(self, kind: ArgoKind, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        """The object (in ``namespace``, default the client's), or None when there is none of that name."""
        ns = namespace or self.namespace
        try:
            return self.api.get_namespaced_custom_object(GROUP, VERSION, ns, kind.plural, name)
        except self._errors as e:
            if _status(e) == NOT_FOUND:
                return None
            raise self._error(f"reading {kind.value} {name!r}", e, ns) from e

    def list(self, kind: ArgoKind, label_selector: str | None = None) -> list[dict[str, Any]]:
        """Every object of ``kind`` in the namespace (matching ``label_selector``)."""
        try:
            kwargs = {"label_selector": label_selector} if label_selector else {}
            out = self.api.list_namespaced_custom_object(GROUP, VERSION, self.namespace, kind.plural, **kwargs)
        except self._errors as e:
            raise self._error(f"listing {kind.value}s", e, self.namespace) from e
        return list(out.get("items") or [])

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create ``obj`` in its own namespace (``metadata.namespace``, default the client's), or replace
        the object of its kind and name there (keeping its ``resourceVersion``, which the server's
        optimistic concurrency check needs)."""
        name = obj["metadata"]["name"]
        try:
            kind = ArgoKind(obj["kind"])
        except ValueError:
            raise ArgoClientError(f"Cannot apply {obj['kind']} {name!r}: headwater deploys only "
                                  f"{[k.value for k in ArgoKind if k is not ArgoKind.WORKFLOW]}.") from None
        ns = obj["metadata"].get("namespace") or self.namespace
        body = {**obj, "metadata": {**obj["metadata"], "namespace": ns}}
        existing = self.get(kind, name, ns)
        try:
            if existing is None:
                return self.api.create_namespaced_custom_object(GROUP, VERSION, ns, kind.plural, body)
            body["metadata"]["resourceVersion"] = existing["metadata"]["resourceVersion"]
            return self.api.replace_namespaced_custom_object(GROUP, VERSION, ns, kind.plural, name, body)
        except self._errors as e:
            raise self._error(f"{'creating' if existing is None else 'replacing'} {kind.value} {name!r}", e,
                              ns) from e

    def delete(self, kind: ArgoKind, name: str, namespace: str | None = None) -> bool:
        """Delete the object (in ``namespace``, default the client's); False when there was none."""
        ns = namespace or self.namespace
        try:
            self.api.delete_namespaced_custom_object(GROUP, VERSION, ns, kind.plural, name)
        except self._errors as e:
            if _status(e) == NOT_FOUND:
                return False
            raise self._error(f"deleting {kind.value} {name!r}", e, ns) from e
        return True

    # ---- workflows -------------------------------------------------------------------------
    def submit(self, workflow: dict[str, Any]) -> dict[str, Any]:
        """Create a Workflow (``metadata.generateName`` gives it a fresh name); the created object."""
        meta = workflow["metadata"]
        what = meta.get("name") or meta.get("generateName", "") + "*"
        try:
            return self.api.create_namespaced_custom_object(GROUP, VERSION, self.namespace,
                                                            ArgoKind.WORKFLOW.plural, workflow)
        except self._errors as e:
            raise self._error(f"submitting Workflow {what!r}", e, self.namespace) from e

    def workflow(self, name: str) -> dict[str, Any]:
        """The Workflow ``name``; an error naming it when there is none."""
        wf = self.get(ArgoKind.WORKFLOW, name)
        if wf is None:
            raise ArgoClientError(f"There is no Workflow {name!r} in the namespace {self.namespace!r}.",
                                  hint=f"Check the run id ({RUN_ID_PREFIX}<workflow name>) and "
                                       "HEADWATER_KUBERNETES_NAMESPACE.")
        return wf

    def terminate(self, name: str) -> dict[str, Any]:
        """Stop the Workflow now, as ``argo terminate`` does (``spec.shutdown: Terminate``)."""
        wf = self.workflow(name)
        if is_finished(wf):
            raise ArgoClientError(f"Cannot terminate the Workflow {name!r}: it has already finished "
                                  f"({workflow_phase(wf).value}).")
        if (wf.get("spec") or {}).get("shutdown") == SHUTDOWN_TERMINATE:
            raise ArgoClientError(f"The Workflow {name!r} has already been terminated.")
        return self._patch(name, {"spec": {"shutdown": SHUTDOWN_TERMINATE}}, "terminating")

    def suspend(self, name: str) -> dict[str, Any]:
        """Start no new step of the Workflow until it is unsuspended (``spec.suspend: true``)."""
        wf = self.workflow(name)
        if is_finished(wf):
            raise ArgoClientError(f"Cannot suspend the Workflow {name!r}: it has already finished "
                                  f"({workflow_phase(wf).value}).")
        if (wf.get("spec") or {}).get("suspend") is True:
            raise ArgoClientError(f"The Workflow {name!r} is already suspended.",
                                  hint="Unsuspend it with `argo-workflows unsuspend`.")
        return self._patch(name, {"spec": {"suspend": True}}, "suspending")

    def unsuspend(self, name: str) -> dict[str, Any]:
        """Let a suspended Workflow go on (``spec.suspend: false``)."""
        wf = self.workflow(name)
        if is_finished(wf):
            raise ArgoClientError(f"Cannot unsuspend the Workflow {name!r}: it has already finished "
                                  f"({workflow_phase(wf).value}).")
        if not (wf.get("spec") or {}).get("suspend"):
            raise ArgoClientError(f"The Workflow {name!r} is not suspended: it is already proceeding.")
        return self._patch(name, {"spec": {"suspend": False}}, "unsuspending")

    # ---- internals -------------------------------------------------------------------------
    def _patch(self, name: str, body: dict[str, Any], verb: str) -> dict[str, Any]:
        try:
            return self.api.patch_namespaced_custom_object(GROUP, VERSION, self.namespace,
                                                           ArgoKind.WORKFLOW.plural, name, body)
        except self._errors as e:
            raise self._error(f"{verb} Workflow {name!r}", e, self.namespace) from e

    @staticmethod
    def _error(what: str, e: BaseException, namespace: str) -> ArgoClientError:
        status = _status(e)
        if status is None:
            return ArgoClientError(f"Kubernetes API error {what} in the namespace {namespace!r}: "
                                   f"{type(e).__name__}: {e}",
                                   hint="Check that the cluster of your kubeconfig is reachable (kubectl get "
                                        "workflowtemplates).")
        hint = {403: "Your Kubernetes user needs permission on argoproj.io objects in this namespace.",
                404: "Is Argo Workflows installed on this cluster (its CRDs), and the namespace right?"}.get(status)
        return ArgoClientError(f"Kubernetes API error {what} in the namespace {namespace!r}: "
                               f"{_message(e)} (HTTP {status}).", hint=hint)


def api_errors() -> tuple[type[BaseException], ...]:
    """What a Kubernetes API call raises when the server refuses it or cannot be reached: the
    client's ``ApiException`` (it has the HTTP ``status``), urllib3's errors and ``OSError``. Any
    other exception is a bug and keeps its traceback."""
    errors: list[type[BaseException]] = [OSError]
    try:
        from kubernetes.client.exceptions import ApiException
    except ImportError:  # an api object that is not the official client's
        pass
    else:
        errors.append(ApiException)
    try:
        from urllib3.exceptions import HTTPError
    except ImportError:
        pass
    else:
        errors.append(HTTPError)
    return tuple(errors)


def _status(e: BaseException) -> int | None:
    status = getattr(e, "status", None)
    return status if isinstance(status, int) and status > 0 else None


def _message(e: BaseException) -> str:
    body = getattr(e, "body", None)
    if body:
        try:
            return str(json.loads(body).get("message") or body)
        except (ValueError, AttributeError):
            return str(body)
    return str(getattr(e, "reason", "") or e)
