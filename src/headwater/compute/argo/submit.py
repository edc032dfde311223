"""The Workflow object that starts a run of a deployed WorkflowTemplate (internal, pure).

``argo-workflows trigger`` and ``argo-workflows resume`` both submit one: a ``Workflow`` whose
``spec.workflowTemplateRef`` names the template, with the run's arguments (flow parameters, or
``origin-run-id`` for a resume) and a ``generateName`` from the template's name, so Argo picks
the run's name (and with it the run id ``argo-<name>``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .compile import API_VERSION


def workflow_from_template(template_name: str, namespace: str, arguments: Mapping[str, str]) -> dict[str, Any]:
    """The Workflow (a dict ready for ``json.dumps``) that runs ``template_name`` with ``arguments``.

    Parameters
    ----------
    template_name : str
        The deployed WorkflowTemplate's name; the Workflow's ``generateName`` is ``<name>-``.
    namespace : str
        The Kubernetes namespace of the template (the Workflow runs there too).
    arguments : Mapping[str, str]
        Workflow parameters by name; those not given keep the template's values.
    """
    spec: dict[str, Any] = {"workflowTemplateRef": {"name": template_name}}
    if arguments:
        spec["arguments"] = {"parameters": [{"name": k, "value": str(v)} for k, v in arguments.items()]}
    return {"apiVersion": API_VERSION, "kind": "Workflow",
            "metadata": {"generateName": f"{template_name}-", "namespace": namespace}, "spec": spec}
