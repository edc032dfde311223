"""``Deployer``: deploy a flow to Argo Workflows from Python, as Metaflow's Deployer API (runner layer).

``Deployer(flow_file, ...).argo_workflows(name=None).create(...)`` runs
``python flow_file [top-level options] argo-workflows [--name N] create ...`` in a
subprocess (the Runner's process machinery: output shown and captured), reads what
the command wrote to its hidden ``--deployer-attribute-file``, and hands back a
``DeployedFlow`` (``runner/deployed.py``) to trigger runs, look at them and delete the
deployment. Every command is the CLI's own, so the Deployer does exactly what a user
typing it would.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import TYPE_CHECKING, Any

from ..exceptions import RunnerError, RunnerValueError
from .options import Opt, _render, _unknown
from .runner import CommandResult, Runner

if TYPE_CHECKING:
    from .deployed import DeployedFlow

#: The CLI group of the Argo Workflows deployer (``python flow.py argo-workflows ...``).
ARGO_WORKFLOWS = "argo-workflows"

#: create(**kwargs) -> ``argo-workflows create`` options.
CREATE_OPTIONS: dict[str, Opt] = {
    "authorize": Opt("--authorize", "value"),
    "generate_new_token": Opt("--generate-new-token", "switch"),
    "new_token": Opt("--new-token", "value"),
    "tags": Opt("--tag", "multiple"),
    "user_namespace": Opt("--namespace", "value"),
    "only_json": Opt("--only-json", "switch"),
    "max_workers": Opt("--max-workers", "value"),
    "workflow_timeout": Opt("--workflow-timeout", "value"),
    "workflow_priority": Opt("--workflow-priority", "value"),
    "image": Opt("--image", "value"),
}
#: delete / terminate / suspend / unsuspend (**kwargs).
AUTHORIZE_OPTIONS: dict[str, Opt] = {"authorize": Opt("--authorize", "value")}
#: trigger(**kwargs) besides the flow's parameters.
TRIGGER_OPTIONS: dict[str, Opt] = {"run_id_file": Opt("--run-id-file", "value")}


class DeployerError(RunnerError, RuntimeError):
    """A deployer command failed (``RuntimeError``, as Metaflow raises); the message ends with what the
    command printed on stderr."""

    headline = "Deployment failed"


class Deployer:
    """Deploy a flow file to a production orchestrator, as ``python flow_file argo-workflows ...`` would.

    Parameters
    ----------
    flow_file : str or os.PathLike
        The flow's file (relative paths start at ``cwd``).
    show_output : bool, default True
        Echo the commands' stdout and stderr here (also captured either way).
    profile : str, optional
        Metaflow's configuration profile; headwater has none (its settings come from
        ``HEADWATER_*`` variables and the config file in ``HEADWATER_HOME``), so only None is accepted.
    env : dict, optional
        Environment variables for the commands, on top of ``os.environ`` (``KUBECONFIG``,
        ``HEADWATER_DATASTORE_ROOT``, ``HEADWATER_KUBERNETES_NAMESPACE``...).
    cwd : str, optional
        Working directory of the commands (default: the current one).
    file_read_timeout : float, default 3600
        Kept for Metaflow compatibility (the commands' attributes are read once they end).
    **kwargs
        Top-level options, as for ``Runner`` (``datastore_root=``, ``quiet=``, ``decospecs=``,
        ``branch=`` / ``production=`` of ``@project``...).

    Examples
    --------
    >>> from headwater import Deployer
    >>> deployed = Deployer("train.py").argo_workflows().create()  # doctest: +SKIP
    >>> triggered = deployed.trigger(alpha=0.5)  # doctest: +SKIP
    >>> triggered.wait_for_run().data.score  # doctest: +SKIP
    """

    def __init__(self, flow_file: str | os.PathLike[str], show_output: bool = True, profile: str | None = None,
                 env: dict[str, str] | None = None, cwd: str | os.PathLike[str] | None = None,
                 file_read_timeout: float = 3600, **kwargs: Any):
        if profile is not None:
            raise RunnerValueError(f"Deployer(profile={profile!r}): headwater has no configuration profiles.",
                                   hint="Pass the settings as environment variables with env={...}, or point "
                                        "HEADWATER_HOME at another config file.")
        self._runner = Runner(flow_file, show_output=show_output, env=env, cwd=cwd,
                              file_read_timeout=file_read_timeout, **kwargs)
        self.flow_file = self._runner.flow_file
        self.show_output = show_output
        self.profile = profile
        self.env = env
        self.cwd = self._runner.cwd
        self.file_read_timeout = file_read_timeout
        self.top_level_kwargs = dict(kwargs)

    def __repr__(self) -> str:
        return f"Deployer({self.flow_file!r})"

    def __enter__(self) -> Deployer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.cleanup()

    def cleanup(self) -> None:
        """Delete the temp files of the commands run so far."""
        self._runner.cleanup()

    def argo_workflows(self, name: str | None = None, **kwargs: Any) -> ArgoWorkflowsDeployer:
        """The Argo Workflows deployer of this flow.

        Parameters
        ----------
        name : str, optional
            ``argo-workflows --name``: the deployment's name (default: from the flow's name, or
            ``@project``'s naming).
        """
        if kwargs:
            raise _unknown(next(iter(kwargs)), "argo_workflows()", {"options": ["name"]})
        return ArgoWorkflowsDeployer(self, name)


class ArgoWorkflowsDeployer:
    """What ``Deployer(...).argo_workflows()`` returns: ``create()`` deploys the flow.

    After ``create()`` (or ``DeployedFlow.from_deployment``): ``name`` is the deployment's name,
    ``flow_name`` the flow's, ``metadata`` where its runs are recorded.
    """

    TYPE = ARGO_WORKFLOWS

    def __init__(self, deployer: Deployer, name: str | None):
        self.deployer = deployer
        self.name: str | None = name
        self.flow_name: str | None = None
        self.metadata: str | None = None
        self.additional_info: dict[str, Any] = {}
        self._name_option = name

    def __repr__(self) -> str:
        return f"ArgoWorkflowsDeployer({self.deployer.flow_file!r}, name={self.name!r})"

    @property
    def datastore_root(self) -> str:
        """The datastore the deployment's runs write to (and ``TriggeredRun.run`` reads)."""
        return self.deployer._runner.datastore_root

    @property
    def env(self) -> dict[str, str]:
        """The environment every command of this deployer runs with."""
        return self.deployer._runner.env

    def create(self, **kwargs: Any) -> DeployedFlow:
        """Deploy the flow (``argo-workflows create``).

        Parameters
        ----------
        **kwargs
            ``authorize=``, ``generate_new_token=True``, ``new_token=``, ``tags=[...]``,
            ``user_namespace=``, ``only_json=True``, ``max_workers=``, ``workflow_timeout=``,
            ``workflow_priority=``, ``image=``.

        Raises
        ------
        DeployerError
            The command failed (its stderr ends the message).
        """
        from .deployed import DeployedFlow

        _, attrs = self.command("create", CREATE_OPTIONS, kwargs, attributes=True)
        self.name = attrs.get("name", self.name)
        self.flow_name = attrs.get("flow_name")
        self.metadata = attrs.get("metadata")
        self.additional_info = attrs.get("additional_info", {})
        return DeployedFlow(self)

    # ---- mechanics ---------------------------------------------------------------------------------
    def command(self, sub: str, table: dict[str, Opt], kwargs: dict[str, Any], *, args: tuple[str, ...] = (),
                extra: tuple[str, ...] = (), attributes: bool = False,
                check: bool = True) -> tuple[CommandResult, dict[str, Any]]:
        """Run ``argo-workflows [--name N] SUB [options from kwargs] [extra] [args]``; its result and the
        attributes it wrote (with ``attributes``). A failed command raises ``DeployerError`` (with
        ``check``; else see ``result.returncode``)."""
        argv: list[str] = []
        for key, value in kwargs.items():
            opt = table.get(key)
            if opt is None:
                raise _unknown(key, f"{sub}()", {f"{sub} options": sorted(table)})
            argv += _render(opt, value, where=f"{sub}({key}=...)")
        group = [ARGO_WORKFLOWS] + (["--name", self._name_option] if self._name_option else [])
        path = None
        if attributes:
            fd, path = tempfile.mkstemp(prefix="headwater-deployer-", suffix=".json")
            os.close(fd)
            argv += ["--deployer-attribute-file", path]
        try:
            result = self.deployer._runner._call([*group, sub, *argv, *extra, *args])
            if result.returncode != 0 and check:
                tail = "\n".join(result.stderr.strip().splitlines()[-15:])
                raise DeployerError(f"`{ARGO_WORKFLOWS} {sub}` of {os.path.basename(self.deployer.flow_file)} "
                                    f"failed (exit code {result.returncode}):\n{tail}")
            attrs: dict[str, Any] = {}
            if path is not None and result.returncode == 0:
                with open(path, encoding="utf-8") as f:
                    text = f.read()
                attrs = json.loads(text) if text.strip() else {}
            return result, attrs
        finally:
            if path is not None:
                os.unlink(path)
