"""The Workflow that starts one run of a deployed WorkflowTemplate (pure, internal).

``argo-workflows trigger`` submits it: a ``workflowTemplateRef`` to the template,
the given parameters as workflow arguments, a generated name (the run id is
``argo-<name>``), and the template's annotations (flow, owner, production token,
project) so that ``status``/``terminate``/``suspend`` can check whose run it is
from the Workflow alone, as Metaflow does.
"""

from __future__ import annotations

from typing import Any

from .client import API_VERSION, ArgoClientError, ArgoKind


def workflow_from_template(template: dict[str, Any], parameters: dict[str, str], *,
                           annotations: dict[str, str] | None = None) -> dict[str, Any]:
    """A Workflow running ``template`` (a deployed WorkflowTemplate) with ``parameters``.

    Parameters
    ----------
    template : dict
        The WorkflowTemplate as read from the server.
    parameters : dict
        Workflow argument name -> value (text, as the ``init`` command parses it); each must be
        declared in the template's ``spec.arguments``.
    annotations : dict, optional
        Added to the template's own annotations (``headwater/triggered_by``...).

    Raises
    ------
    ArgoClientError
        A parameter the template does not declare.
    """
    meta = template["metadata"]
    declared = [p["name"] for p in (template["spec"].get("arguments") or {}).get("parameters", [])]
    unknown = sorted(set(parameters) - set(declared))
    if unknown:
        raise ArgoClientError(f"The WorkflowTemplate {meta['name']!r} has no parameters {unknown}.",
                              hint=f"Its parameters are {declared}; redeploy with `argo-workflows create` "
                                   "if the flow changed.")
    body: dict[str, Any] = {
        "apiVersion": API_VERSION, "kind": ArgoKind.WORKFLOW.value,
        "metadata": {"generateName": meta["name"] + "-",
                     "labels": dict(meta.get("labels") or {}),
                     "annotations": {**(meta.get("annotations") or {}), **(annotations or {})}},
        "spec": {"workflowTemplateRef": {"name": meta["name"]}},
    }
    if parameters:
        body["spec"]["arguments"] = {"parameters": [{"name": k, "value": v} for k, v in parameters.items()]}
    return body
