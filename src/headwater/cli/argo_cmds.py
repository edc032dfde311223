"""``python flow.py argo-workflows ...``: deploy the flow to Argo Workflows and manage its runs
(interface layer).

``create --only-json`` prints the WorkflowTemplate (and the CronWorkflow of ``@schedule``, the
Sensor of ``@trigger`` / ``@trigger_on_finish``) that would be created; ``create`` applies them
to the cluster of the kubeconfig (production tokens as Metaflow handles them); ``trigger``
starts a run, ``status``, ``terminate``, ``suspend`` and ``unsuspend`` act on one, ``delete``
removes the deployment and ``list-workflow-templates`` lists deployments; ``resume RUN_ID``
starts a run that clones what succeeded in a failed one. Options and output texts are Metaflow's.
"""

from __future__ import annotations

import json
from typing import Any

import click

from .argo_deploy import DEFAULT_IMAGE, IMAGE_ENV, compile_deployment, resume_workflow
from .errors import guarded


def _authorize_option(what: str) -> Any:
    return click.option("--authorize", default=None, type=str, help=f"Authorize the {what} with a production token.")


_DEPLOYER_ATTRIBUTE_FILE = click.option(
    "--deployer-attribute-file", default=None, type=str, hidden=True,
    help="Write the deployment's (or run's) attributes to this file as JSON (used by the Deployer API).")


def _trigger_params(flow_cls: type) -> list[click.Parameter]:
    """The flow's parameters as ``trigger`` options (typed as for ``run``; no environment defaults)."""
    from ..flow.parameters import flow_parameters
    from .flow_cli import _click_option

    out = []
    for p in flow_parameters(flow_cls):
        opt = _click_option(p)
        opt.envvar = None
        out.append(opt)
    return out


def add_argo_commands(cli: click.Group, flow_cls: type) -> None:
    """Add the ``argo-workflows`` command group to the per-flow CLI of ``flow_cls``."""

    @cli.group("argo-workflows", help="Commands related to Argo Workflows.")
    @click.option("--name", default=None, type=str,
                  help="Argo Workflow name. The flow name is used instead if this option is not specified.")
    @click.pass_context
    def argo_workflows(ctx: click.Context, name: str | None) -> None:
        ctx.obj["argo_name"] = name

    @argo_workflows.command(help="Deploy a new version of this workflow to Argo Workflows.")
    @click.option("--authorize", default=None,
                  help="Authorize using this production token. You need this when you are re-deploying an "
                       "existing flow for the first time. The token is kept in your HEADWATER_HOME, so you only "
                       "need to give it once.")
    @click.option("--generate-new-token", is_flag=True,
                  help="Generate a new production token for this flow. This will move the production flow to a "
                       "new namespace.")
    @click.option("--new-token", "given_token", default=None,
                  help="Use the given production token for this flow. This will move the production flow to the "
                       "given namespace.")
    @click.option("--tag", "tags", multiple=True, help="Annotate every run of the deployment with this tag "
                                                       "(repeatable).")
    @click.option("--namespace", "user_namespace", default=None, help="The client namespace inside the tasks.")
    @click.option("--only-json", is_flag=True, default=False,
                  help="Only print the JSON that would be sent to Argo Workflows; deploy nothing.")
    @click.option("--max-workers", default=100, show_default=True, type=click.IntRange(min=1),
                  help="Most tasks running at once (the workflow's parallelism).")
    @click.option("--workflow-timeout", default=None, type=click.IntRange(min=1),
                  help="Workflow timeout in seconds.")
    @click.option("--workflow-priority", default=None, type=int, help="Workflow priority as an integer.")
    @click.option("--auto-emit-argo-events/--no-auto-emit-argo-events", default=True, show_default=True,
                  help="Publish the event headwater.<flow>.end when a run succeeds (needs "
                       "HEADWATER_ARGO_EVENTS_WEBHOOK_URL); @trigger_on_finish flows listen for it.")
    @click.option("--image", default=None, metavar="IMAGE",
                  help=f"Container image of every task (default: ${IMAGE_ENV}, else {DEFAULT_IMAGE}).")
    @_DEPLOYER_ATTRIBUTE_FILE
    @click.pass_context
    def create(ctx: click.Context, only_json: bool, authorize: str | None, generate_new_token: bool,
               given_token: str | None, deployer_attribute_file: str | None, **opts: Any) -> None:
        from . import argo_server_cmds as server
        from .flow_cli import _banner

        _banner(ctx, flow_cls)
        if not only_json:
            objects = guarded(lambda: server.deploy(ctx, flow_cls, opts, authorize=authorize,
                                                    given_token=given_token, generate_new_token=generate_new_token))
            server.write_attributes(deployer_attribute_file, {
                "name": objects[0]["metadata"]["name"], "flow_name": flow_cls.__name__,
                "metadata": server.metadata_str(ctx.obj["settings"])})
            return
        objects = guarded(lambda: compile_deployment(ctx, flow_cls, opts))
        server.write_attributes(deployer_attribute_file, {
            "name": objects[0]["metadata"]["name"], "flow_name": flow_cls.__name__,
            "metadata": server.metadata_str(ctx.obj["settings"]), "additional_info": {"workflow_template": objects[0]}})
        # One JSON document: the template alone, or a List (as kubectl apply takes it) with the CronWorkflow
        # and the Sensor.
        doc = objects[0] if len(objects) == 1 else {"apiVersion": "v1", "kind": "List", "items": objects}
        click.echo(json.dumps(doc, indent=2))

    @argo_workflows.command(help="Trigger the workflow on Argo Workflows.", params=_trigger_params(flow_cls))
    @click.option("--run-id-file", default=None, type=str, help="Write the ID of this run to the file specified.")
    @_DEPLOYER_ATTRIBUTE_FILE
    @click.pass_context
    def trigger(ctx: click.Context, run_id_file: str | None, deployer_attribute_file: str | None,
                **values: Any) -> None:
        from ..compute.argo.naming import parameter_name
        from ..flow.parameters import flow_parameters
        from . import argo_server_cmds as server

        given = {parameter_name(p.name): server.trigger_value(p, values[p.attr_name])
                 for p in flow_parameters(flow_cls) if values.get(p.attr_name) is not None}
        guarded(lambda: server.trigger(ctx, flow_cls, given, run_id_file=run_id_file,
                                       deployer_attribute_file=deployer_attribute_file))

    @argo_workflows.command(help="Delete the flow on Argo Workflows.")
    @_authorize_option("deletion")
    @click.pass_context
    def delete(ctx: click.Context, authorize: str | None) -> None:
        from . import argo_server_cmds as server

        guarded(lambda: server.delete(ctx, flow_cls, authorize))

    @argo_workflows.command(help="Fetch flow execution status on Argo Workflows.")
    @click.argument("run-id", required=True, type=str)
    @click.pass_context
    def status(ctx: click.Context, run_id: str) -> None:
        from . import argo_server_cmds as server

        click.echo(guarded(lambda: server.status(ctx, flow_cls, run_id)))

    for verb, what, helptext in (("terminate", "termination", "Terminate flow execution on Argo Workflows."),
                                 ("suspend", "suspension", "Suspend flow execution on Argo Workflows."),
                                 ("unsuspend", "unsuspend", "Unsuspend flow execution on Argo Workflows.")):
        def act(ctx: click.Context, run_id: str, authorize: str | None, verb: str = verb) -> None:
            from . import argo_server_cmds as server

            guarded(lambda: getattr(server, verb)(ctx, flow_cls, run_id, authorize))

        command = click.pass_context(act)
        argo_workflows.add_command(click.Command(
            verb, help=helptext, callback=command,
            params=[click.Option(["--authorize"], default=None, type=str,
                                 help=f"Authorize the {what} with a production token."),
                    click.Argument(["run_id"], required=True, type=str)]))

    @argo_workflows.command("list-workflow-templates", help="List Argo Workflow templates for the flow.")
    @click.option("--all", "all_", default=False, is_flag=True,
                  help="list all Argo Workflow Templates (not just limited to this flow)")
    @click.pass_context
    def list_workflow_templates(ctx: click.Context, all_: bool) -> None:
        from . import argo_server_cmds as server

        for name in guarded(lambda: server.list_templates(ctx, None if all_ else flow_cls.__name__)):
            click.echo(name)

    @argo_workflows.command(help="Resume a failed run on Argo Workflows: a new run clones the tasks of RUN_ID "
                                 "that succeeded upstream of the failure and runs the rest.")
    @click.argument("run_id")
    @click.option("--only-json", is_flag=True, default=False,
                  help="Only print the Workflow that would be submitted; submit nothing.")
    @click.option("--run-id-file", default=None, type=str, help="Write the ID of the new run to the file specified.")
    @click.pass_context
    def resume(ctx: click.Context, run_id: str, only_json: bool, run_id_file: str | None) -> None:
        from .flow_cli import _banner

        _banner(ctx, flow_cls)
        workflow = guarded(lambda: resume_workflow(ctx, flow_cls, run_id))
        if only_json:
            click.echo(json.dumps(workflow, indent=2))
            return
        from . import argo_server_cmds as server

        guarded(lambda: server.submit_resume(ctx, flow_cls, run_id, workflow, run_id_file=run_id_file))

