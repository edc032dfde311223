"""``DeployedFlow`` and ``TriggeredRun``: a flow deployed to Argo Workflows, and one run of it (runner layer).

What changes something (trigger, terminate, suspend, unsuspend, delete) runs the flow's
own ``argo-workflows`` command in a subprocess; what only looks (``status``,
``production_token``, ``list_deployed_flows``) asks the cluster in-process, as Metaflow's
Deployer does. ``TriggeredRun.run`` is the client ``Run``, read from the datastore the
deployment's tasks write to, once the run has recorded itself.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..compute.argo.naming import (BRANCH_ANNOTATION, FLOW_ANNOTATION, OWNER_ANNOTATION, PARAMETERS_ANNOTATION,
                                   PROJECT_ANNOTATION, TOKEN_ANNOTATION, workflow_of)
from ..exceptions import RunnerValueError
from .deployer import (ARGO_WORKFLOWS, AUTHORIZE_OPTIONS, TRIGGER_OPTIONS, ArgoWorkflowsDeployer, Deployer,
                       DeployerError)

if TYPE_CHECKING:
    from ..client import Run
    from ..compute.argo.client import ArgoClient

def _client(env: dict[str, str] | None = None, cwd: str | None = None) -> ArgoClient:
    """The Argo client for the cluster and namespace ``env`` points at (default: this process's)."""
    from ..compute.argo.client import ArgoClient
    from ..config import load_settings

    env = dict(os.environ) if env is None else env
    return ArgoClient.from_config(load_settings(environ=env, cwd=cwd).kubernetes_namespace,
                                  config_file=env.get("KUBECONFIG"))


def _check_impl(impl: str) -> None:
    if impl.replace("_", "-") != ARGO_WORKFLOWS:
        raise RunnerValueError(f"impl={impl!r} is not a deployer headwater has.", hint="Use impl='argo-workflows'.")


class TriggeredRun:
    """A run started by ``DeployedFlow.trigger()``.

    Attributes
    ----------
    deployer : ArgoWorkflowsDeployer
        The deployer of the flow it is a run of.
    pathspec : str
        ``Flow/argo-<workflow name>``.
    """

    def __init__(self, deployer: ArgoWorkflowsDeployer, content: dict[str, Any]):
        self.deployer = deployer
        self.metadata_for_flow = content.get("metadata")
        self.pathspec: str = content["pathspec"]
        self.name = content.get("name")

    def __repr__(self) -> str:
        return f"TriggeredRun({self.pathspec!r})"

    @property
    def run_id(self) -> str:
        return self.pathspec.split("/", 1)[1]

    @property
    def run(self) -> Run | None:
        """The client ``Run``, once the run has recorded itself (its parameters task ran); None before."""
        from ..client.core import open_run
        from ..exceptions import HeadwaterNotFound

        try:
            return open_run(self.pathspec, self.deployer.datastore_root)
        except HeadwaterNotFound:
            return None

    def wait_for_run(self, check_interval: float = 5, timeout: float | None = None) -> Run:
        """Wait until ``run`` exists and return it; ``TimeoutError`` after ``timeout`` seconds."""
        end = None if timeout is None else time.monotonic() + timeout
        while (run := self.run) is None:
            if end is not None and time.monotonic() > end:
                raise TimeoutError(f"The run {self.pathspec} did not start within {timeout} s.")
            time.sleep(check_interval)
        return run

    @property
    def status(self) -> str | None:
        """``Pending``, ``Running``, ``Succeeded`` or ``Failed`` (as ``argo-workflows status`` says it), or
        None when the cluster has no such Workflow (any more)."""
        from ..compute.argo.client import ArgoKind, run_status

        name = workflow_of(self.run_id)
        wf = None if name is None else _client(self.deployer.env, self.deployer.deployer.cwd).get(
            ArgoKind.WORKFLOW, name)
        return None if wf is None else run_status(wf, self.run is not None)

    @property
    def is_running(self) -> bool:
        """Whether the run is Pending or Running."""
        from ..compute.argo.client import WorkflowPhase

        return self.status in (WorkflowPhase.PENDING.value, WorkflowPhase.RUNNING.value)

    def wait_for_completion(self, check_interval: float = 5, timeout: float | None = None) -> None:
        """Wait until the run ends; ``TimeoutError`` after ``timeout`` seconds."""
        end = None if timeout is None else time.monotonic() + timeout
        while self.is_running:
            if end is not None and time.monotonic() > end:
                raise TimeoutError(f"The run {self.pathspec} did not complete within {timeout} s.")
            time.sleep(check_interval)

    def _act(self, verb: str, kwargs: dict[str, Any]) -> bool:
        result, _ = self.deployer.command(verb, AUTHORIZE_OPTIONS, kwargs, args=(self.run_id,), check=False)
        return result.returncode == 0

    def terminate(self, **kwargs: Any) -> bool:
        """Stop the run now (``argo-workflows terminate``; ``authorize=`` a production token). True if done."""
        return self._act("terminate", kwargs)

    def suspend(self, **kwargs: Any) -> bool:
        """Start no new step until ``unsuspend()`` (``argo-workflows suspend``). True if done."""
        return self._act("suspend", kwargs)

    def unsuspend(self, **kwargs: Any) -> bool:
        """Let a suspended run go on (``argo-workflows unsuspend``). True if done."""
        return self._act("unsuspend", kwargs)


class DeployedFlow:
    """A flow deployed to Argo Workflows: what ``create()`` and ``from_deployment()`` return.

    Attributes
    ----------
    deployer : ArgoWorkflowsDeployer
        The deployer that made it (or one made for it by ``from_deployment``).
    """

    TYPE = ARGO_WORKFLOWS

    def __init__(self, deployer: ArgoWorkflowsDeployer):
        self.deployer = deployer

    def __repr__(self) -> str:
        return f"DeployedFlow({self.name!r}, flow={self.flow_name!r})"

    @property
    def name(self) -> str | None:
        """The deployment's name (the WorkflowTemplate's)."""
        return self.deployer.name

    @property
    def flow_name(self) -> str | None:
        return self.deployer.flow_name

    @property
    def workflow_template(self) -> dict[str, Any] | None:
        """The compiled WorkflowTemplate of a ``create(only_json=True)``; None otherwise."""
        return self.deployer.additional_info.get("workflow_template")

    @property
    def production_token(self) -> str | None:
        """The deployment's production token, or None when it is not deployed (any more)."""
        from ..compute.argo.client import ArgoKind

        template = _client(self.deployer.env, self.deployer.deployer.cwd).get(ArgoKind.WORKFLOW_TEMPLATE,
                                                                              str(self.name))
        return None if template is None else (template["metadata"].get("annotations") or {}).get(TOKEN_ANNOTATION)

    def trigger(self, **kwargs: Any) -> TriggeredRun:
        """Start a run (``argo-workflows trigger``).

        Parameters
        ----------
        **kwargs
            The flow's parameters by name (``-`` written ``_``), and ``run_id_file=``.

        Raises
        ------
        DeployerError
            The command failed (not deployed, a bad value...).
        """
        from ..flow.parameters import flow_parameters
        from .options import _render_parameter, parameter_keyword

        params = {parameter_keyword(p): p for p in flow_parameters(self.deployer.deployer._runner.flow_cls)}
        options = {k: v for k, v in kwargs.items() if k not in params}
        extra: list[str] = []
        for key, value in kwargs.items():
            if key in params:
                extra += _render_parameter(params[key], value)
            elif key not in TRIGGER_OPTIONS:
                from .options import _unknown

                raise _unknown(key, "trigger()", {"trigger options": sorted(TRIGGER_OPTIONS),
                                                  "flow parameters": sorted(params)})
        _, attrs = self.deployer.command("trigger", TRIGGER_OPTIONS, options, extra=tuple(extra), attributes=True)
        return TriggeredRun(self.deployer, attrs)

    def delete(self, **kwargs: Any) -> bool:
        """Delete the deployment (``argo-workflows delete``; ``authorize=`` a production token). True if done."""
        result, _ = self.deployer.command("delete", AUTHORIZE_OPTIONS, kwargs, check=False)
        return result.returncode == 0

    # ---- deployments made elsewhere -----------------------------------------------------------------
    @classmethod
    def from_deployment(cls, identifier: str, metadata: str | None = None,
                        impl: str = ARGO_WORKFLOWS) -> DeployedFlow:
        """The deployment named ``identifier``, without its flow file (as Metaflow: a stand-in flow file
        with the deployed flow's name and parameters drives the commands, as the deployment's owner).

        Raises
        ------
        DeployerError
            No deployment of that name in the namespace.
        """
        from ..compute.argo.client import ArgoKind

        _check_impl(impl)
        template = _client().get(ArgoKind.WORKFLOW_TEMPLATE, identifier)
        if template is None:
            raise DeployerError(f"No deployed flow found for {identifier!r} on Argo Workflows.",
                                hint="list_deployed_flows() lists what is deployed.")
        notes = template["metadata"].get("annotations") or {}
        flow_name = notes.get(FLOW_ANNOTATION, "")
        project, branch = notes.get(PROJECT_ANNOTATION), notes.get(BRANCH_ANNOTATION)
        source = stand_in_flow(flow_name, json.loads(notes.get(PARAMETERS_ANNOTATION, "{}")), project)
        folder = tempfile.mkdtemp(prefix="headwater-deployed-")
        path = os.path.join(folder, "flow.py")
        with open(path, "w", encoding="utf-8") as f:
            f.write(source)
        top: dict[str, Any] = {}
        if branch is not None:
            top = _branch_options(branch)
        deployer = Deployer(path, env={"HEADWATER_USER": notes.get(OWNER_ANNOTATION, "")}, **top)
        # The stand-in lives as long as its deployer (a TriggeredRun keeps it too), then goes.
        weakref.finalize(deployer, shutil.rmtree, folder, ignore_errors=True)
        impl_deployer = deployer.argo_workflows(name=None if project else identifier)
        impl_deployer.name, impl_deployer.flow_name = identifier, flow_name
        impl_deployer.metadata = metadata
        return cls(impl_deployer)

    @classmethod
    def list_deployed_flows(cls, flow_name: str | None = None, impl: str = ARGO_WORKFLOWS) -> Iterator[DeployedFlow]:
        """Every deployment (of ``flow_name``) in the namespace, as ``DeployedFlow`` objects."""
        from ..compute.argo.client import ArgoKind

        _check_impl(impl)
        for template in _client().list(ArgoKind.WORKFLOW_TEMPLATE):
            notes = template["metadata"].get("annotations") or {}
            if OWNER_ANNOTATION not in notes or (flow_name is not None and notes.get(FLOW_ANNOTATION) != flow_name):
                continue
            yield cls.from_deployment(template["metadata"]["name"])

    @classmethod
    def get_triggered_run(cls, identifier: str, run_id: str, metadata: str | None = None,
                          impl: str = ARGO_WORKFLOWS) -> TriggeredRun:
        """The run ``run_id`` of the deployment ``identifier``."""
        deployed = cls.from_deployment(identifier, metadata, impl)
        return TriggeredRun(deployed.deployer, {"metadata": metadata, "name": run_id,
                                                "pathspec": f"{deployed.flow_name}/{run_id}"})


def _branch_options(branch: str) -> dict[str, Any]:
    """``@project`` top-level options that give back the deployed branch."""
    if branch == "prod":
        return {"production": True}
    for prefix, extra in (("prod.", {"production": True}), ("test.", {})):
        if branch.startswith(prefix):
            return {**extra, "branch": branch[len(prefix):]}
    return {}  # user.<name>: the owner's own branch (the stand-in runs as the owner)


def stand_in_flow(flow_name: str, parameters: dict[str, str], project: str | None) -> str:
    """The source of a flow named ``flow_name`` with ``parameters`` (name -> default text), enough for
    the ``argo-workflows`` commands of a deployment whose flow file is not here."""
    if not flow_name.isidentifier():
        raise DeployerError(f"The deployment's flow name {flow_name!r} is not a Python class name.")
    lines = ["from headwater import FlowSpec, Parameter, project, step", "", ""]
    if project:
        lines.append(f"@project(name={project!r})")
    lines.append(f"class {flow_name}(FlowSpec):")
    for i, (name, default) in enumerate(parameters.items()):
        lines.append(f"    param_{i} = Parameter({name!r}, default={default!r})")
    lines += ["", "    @step", "    def start(self):", "        self.next(self.end)", "",
              "    @step", "    def end(self):", "        pass", "", "",
              'if __name__ == "__main__":', f"    {flow_name}()", ""]
    return "\n".join(lines)
