"""Names of Argo objects and templates for a flow, as Metaflow builds them (internal).

A workflow is named after the flow (lower-cased, without ``_``, ``@``, ``+``), or
``<project>.<branch>.<flow>`` under ``@project``; names longer than Argo's limit are
shortened with a hash of the full name, as Metaflow does, so a headwater deployment of a
flow has the name a Metaflow deployment of it would have.
"""

from __future__ import annotations

import base64
import hashlib
import re

from ...exceptions import HeadwaterException
# A flow parameter's workflow argument name: the rule lives with parameters, as @trigger's mappings use it too.
from ...flow.parameters import deployed_parameter_name as parameter_name  # noqa: F401

#: Metaflow's limit on a workflow's name (Argo adds suffixes to pod names).
MAX_NAME_LENGTH = 45
_VALID = re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$")
_LEADING = re.compile(r"^[^A-Za-z0-9]+")
_AROUND_DOT = re.compile(r"[^a-z0-9]*\.[^a-z0-9]*")
#: Prefixes keeping container and DAG template names apart from each other and from ``main``.
STEP_TEMPLATE_PREFIX = "step-"
DAG_TEMPLATE_PREFIX = "dag-"
ENTRYPOINT = "main"
INIT_TEMPLATE = "init"
INIT_TASK = "init-params"
#: The workflow parameter naming the run a resumed run clones from (empty: not a resume).
ORIGIN_RUN_PARAMETER = "origin-run-id"
#: Every run id of a run started by Argo Workflows: ``argo-<Workflow name>``.
RUN_ID_PREFIX = "argo-"

# Annotations of a deployment: the WorkflowTemplate carries them, and each Workflow triggered from it.
#: Who deployed it, and its production token (``compute/argo/tokens.py``).
OWNER_ANNOTATION = "headwater/owner"
TOKEN_ANNOTATION = "headwater/production_token"
#: The flow's class name, its ``@project`` and branch.
FLOW_ANNOTATION = "headwater/flow_name"
PROJECT_ANNOTATION = "headwater/project_name"
BRANCH_ANNOTATION = "headwater/branch_name"
#: ``{parameter name: default text}`` (JSON), what a stand-in flow of the deployment needs.
PARAMETERS_ANNOTATION = "headwater/parameters"
#: ``argo-workflows create --tag`` values (JSON list).
TAGS_ANNOTATION = "headwater/tags"
#: The deployment's Sensor (``@trigger``), and the namespace it is in (what ``delete`` needs).
SENSOR_NAME_ANNOTATION = "headwater/sensor_name"
SENSOR_NAMESPACE_ANNOTATION = "headwater/sensor_namespace"
#: The deployment's triggers (JSON list of ``{name, type}``).
TRIGGERS_ANNOTATION = "headwater/triggers"
#: On a Workflow: who or what started it (a user, or the Sensor's events as JSON).
TRIGGERED_BY_ANNOTATION = "headwater/triggered_by"
#: On a Workflow (``workflowMetadata``): its run id.
RUN_ID_ANNOTATION = "headwater/run_id"
#: On a Sensor: the WorkflowTemplate it starts.
WORKFLOW_TEMPLATE_ANNOTATION = "headwater/workflow_template"


class ArgoNameError(HeadwaterException):
    """A workflow name Argo would refuse."""

    headline = "Bad Argo Workflows name"


def sanitize(text: str) -> str:
    """``text`` as an Argo resource name (Metaflow's mapping: drop ``_@+``, lower-case)."""
    out = _LEADING.sub("", text).replace("_", "").replace("@", "").replace("+", "").lower()
    return _AROUND_DOT.sub(".", out)


def _hash(text: str, n: int) -> str:
    return base64.b32encode(hashlib.sha1(text.encode()).digest()).decode()[:n].lower()


def _squeeze(text: str, budget: int) -> str:
    if len(text) <= budget:
        return text
    head = budget // 2
    return text[:head] + text[-(budget - head):]


def workflow_name(flow_name: str, *, name: str | None = None, project: str | None = None,
                  branch: str | None = None) -> str:
    """The WorkflowTemplate's name for a flow.

    Parameters
    ----------
    flow_name : str
        The flow class's name.
    name : str, optional
        ``argo-workflows --name``; not allowed with ``@project`` (use ``--branch``).
    project, branch : str, optional
        The ``@project`` name and the resolved branch (``user.<u>``, ``test.<b>``, ``prod``...).
    """
    if project:
        if name:
            raise ArgoNameError("--name cannot be used with a @project flow.",
                                hint="Drop --name; choose the deployment with --branch or --production.")
        full = f"{project}.{branch}.{flow_name}"
        if len(full) <= MAX_NAME_LENGTH:
            return full if _VALID.match(full) else sanitize(full)
        # Metaflow's shortening: share the room among project, branch and flow, then add a hash.
        parts = [project, branch or "", flow_name]
        room = MAX_NAME_LENGTH - 6 - 3 * 7
        total = sum(len(p) for p in parts)
        extras = [int(room * len(p) / total) for p in parts]
        while sum(extras) < room:
            extras[extras.index(min(extras))] += 1
        budgets = [7 + e for e in extras]
        short = f"{_squeeze(project, budgets[0])}.{(branch or '')[:budgets[1]]}.{_squeeze(flow_name, budgets[2])}"
        return f"{sanitize(short)}-{_hash(full, 5)}"
    if name is not None and not _VALID.match(name):
        raise ArgoNameError(f"The workflow name {name!r} is not a valid Argo name.",
                            hint="Use lower-case letters, digits, '-' and '.', starting and ending with a "
                                 "letter or digit.")
    chosen = name or flow_name
    if len(chosen) > MAX_NAME_LENGTH:
        raise ArgoNameError(f"The workflow name {chosen!r} is longer than {MAX_NAME_LENGTH} characters.",
                            hint="Give a shorter name with `argo-workflows --name NAME create`.")
    return chosen if _VALID.match(chosen) else sanitize(chosen)


def task_name(step: str) -> str:
    """The DAG task name of a step (``_`` is not allowed in Argo names; ``-`` is not in step names)."""
    return step.replace("_", "-")


def step_template(step: str) -> str:
    """The container template that runs a step's task."""
    return STEP_TEMPLATE_PREFIX + task_name(step)


def foreach_template(split_step: str) -> str:
    """The DAG template holding the body of the foreach ``split_step`` (one instance per split)."""
    return DAG_TEMPLATE_PREFIX + task_name(split_step)


def run_id(workflow: str) -> str:
    """The run id of the run the Workflow ``workflow`` is (``argo-<name>``)."""
    return RUN_ID_PREFIX + workflow


def workflow_of(run_id: str) -> str | None:
    """The Workflow name of the Argo run ``run_id``; None when it is not an Argo run id."""
    return run_id[len(RUN_ID_PREFIX):] if run_id.startswith(RUN_ID_PREFIX) else None
