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
import os
import sys
from typing import Any

import click

from ..exceptions import HeadwaterException
from .errors import guarded

#: The image a task runs in when neither --image nor HEADWATER_KUBERNETES_CONTAINER_IMAGE says.
DEFAULT_IMAGE = f"python:{sys.version_info.major}.{sys.version_info.minor}"
IMAGE_ENV = "HEADWATER_KUBERNETES_CONTAINER_IMAGE"
NAMESPACE_ENV = "HEADWATER_KUBERNETES_NAMESPACE"
#: Every run id of a run started by Argo Workflows: ``argo-<Workflow name>``.
RUN_ID_PREFIX = "argo-"
#: Annotations a deployment carries (the WorkflowTemplate, and each Workflow triggered from it).
OWNER_ANNOTATION = "headwater/owner"
TOKEN_ANNOTATION = "headwater/production_token"
FLOW_ANNOTATION = "headwater/flow_name"
PROJECT_ANNOTATION = "headwater/project_name"
BRANCH_ANNOTATION = "headwater/branch_name"
SENSORS_ANNOTATION = "headwater/sensor_names"


class ArgoCommandError(HeadwaterException):
    headline = "Argo Workflows error"


class RunIdMismatch(HeadwaterException):
    """A run id that is not a run of this flow (or branch) on Argo Workflows."""

    headline = "Run ID mismatch"


def _remote_root(settings: Any) -> str:
    """The datastore root an Argo run uses; an error for a local one (pods cannot share it)."""
    from ..store.roots import is_local_root

    root = settings.datastore_root
    if is_local_root(root):
        raise ArgoCommandError(f"Argo Workflows needs an S3 datastore; this command uses the local one ({root}).",
                               hint="Pass --datastore=s3 (with HEADWATER_DATASTORE_SYSROOT_S3 set) or "
                                    "--datastore-root s3://bucket/prefix.")
    return root


def _deployment(ctx: click.Context, flow_cls: type) -> tuple[Any, dict[str, Any], str]:
    """The flow prepared for Argo: its graph, its ``current`` fields (``@project``) and the
    WorkflowTemplate's name."""
    from ..compute.argo.naming import workflow_name
    from ..flow.flow_decorators import flow_current_fields, init_flow_decorators
    from ..flow.mutators import prepare_flow
    from .flow_cli import _lint_or_raise

    prepare_flow(flow_cls, ctx.obj["decospecs"])
    graph = _lint_or_raise(flow_cls)
    init_flow_decorators(flow_cls, graph, ctx.obj["flow_options"])
    fields = flow_current_fields(flow_cls)
    name = workflow_name(flow_cls.__name__, name=ctx.obj.get("argo_name"), project=fields.get("project_name"),
                         branch=fields.get("branch_name"))
    return graph, fields, name


def _compile(ctx: click.Context, flow_cls: type, opts: dict[str, Any]) -> list[dict[str, Any]]:
    from ..compute.argo.compile import CompileOptions, compile_cron_workflow, compile_workflow_template
    from ..compute.argo.settings import flow_parameters_for_argo, step_settings
    from ..flow.flow_decorators import flow_option_args
    from ..flow.schedule import flow_schedule
    from ..package import build_package, parse_suffixes
    from ..package.stored import save_package
    from ..store import Datastore

    settings = ctx.obj["settings"]
    root = _remote_root(settings)
    graph, fields, name = _deployment(ctx, flow_cls)
    script = os.path.abspath(sys.argv[0])
    pkg = build_package(script, parse_suffixes(ctx.obj["top"]["package_suffixes"]))
    # Stored now, as Metaflow does even with --only-json: the pods fetch it by this key.
    package = guarded(lambda: save_package(Datastore(root).content, pkg))
    env = {k: settings.extra[k] for k in ("HEADWATER_S3_ENDPOINT_URL",) if k in settings.extra}
    if settings.user:
        env["HEADWATER_USER"] = settings.user
    labels = {}
    if "project_name" in fields:
        labels = {"headwater/project": fields["project_name"],
                  "headwater/branch": fields["branch_name"].replace("user.", "user-").replace(".", "-")[:63]}
    copts = CompileOptions(
        name=name, image=opts["image"] or settings.extra.get(IMAGE_ENV) or DEFAULT_IMAGE,
        datastore_root=root, package_key=package["key"], flow_file=pkg.script,
        namespace=settings.extra.get(NAMESPACE_ENV, "default"), max_workers=opts["max_workers"],
        workflow_timeout=opts["workflow_timeout"], workflow_priority=opts["workflow_priority"],
        tags=tuple(opts["tags"]), user_namespace=opts["user_namespace"],
        flow_args=flow_option_args(ctx.obj["flow_options"]), env=env, labels=labels)
    steps = step_settings(flow_cls, k8s_secrets=settings.kubernetes_secrets,
                          k8s_service_account=settings.kubernetes_service_account)
    params = flow_parameters_for_argo(flow_cls)
    objects = [compile_workflow_template(graph, steps, params, copts)]
    sched = flow_schedule(flow_cls)
    if sched is not None and sched.schedule is not None:
        objects.append(compile_cron_workflow(name, copts.namespace, sched.schedule, sched.timezone))
    return _add_events(objects, flow_cls, graph, params, copts, fields, settings,
                       auto_emit=opts["auto_emit_argo_events"])


def _add_events(objects: list[dict[str, Any]], flow_cls: type, graph: Any, params: list[Any], copts: Any,
                fields: dict[str, Any], settings: Any, *, auto_emit: bool) -> list[dict[str, Any]]:
    """The Sensor of ``@trigger`` / ``@trigger_on_finish``, and the end-event task when a webhook is set."""
    from ..compute.argo.end_event import EndEvent, add_end_event
    from ..compute.argo.payloads import add_event_payloads
    from ..compute.argo.sensors import SensorOptions, compile_sensor, trigger_annotations
    from ..compute.argo.settings import EventsSettings
    from ..flow.triggers import flow_triggers, trigger_options

    events = EventsSettings.from_env(settings.extra)
    if auto_emit and events.internal_webhook_url:
        objects[0] = add_end_event(objects[0], EndEvent(events.internal_webhook_url, flow_cls.__name__, graph.end,
                                                        copts.image, fields))
    triggers = flow_triggers(flow_cls, parameters=[p.name for p in params], project=fields.get("project_name"),
                             branch=fields.get("branch_name"))
    if triggers:
        sopts = SensorOptions(template_name=copts.name, namespace=copts.namespace, events=events,
                              labels=dict(copts.labels), reset_at=trigger_options(flow_cls).get("reset_at"))
        objects.append(compile_sensor(triggers, params, sopts))
        objects[0] = add_event_payloads(objects[0], triggers)
        objects[0]["metadata"]["annotations"].update(trigger_annotations(triggers, sopts))
    return objects


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
                       "existing flow for the first time. The token is remembered in the datastore.")
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
        objects = guarded(lambda: _compile(ctx, flow_cls, opts))
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
        workflow = guarded(lambda: _resume_workflow(ctx, flow_cls, run_id))
        if only_json:
            click.echo(json.dumps(workflow, indent=2))
            return
        from . import argo_server_cmds as server

        guarded(lambda: server.submit_resume(ctx, flow_cls, workflow, run_id_file=run_id_file))


def _resume_workflow(ctx: click.Context, flow_cls: type, run_id: str) -> dict[str, Any]:
    """The Workflow that resumes ``run_id``: the deployed template, started with ``origin-run-id``."""
    from ..compute.argo.naming import ORIGIN_RUN_PARAMETER
    from ..compute.argo.submit import workflow_from_template
    from ..runtime.resume import check_origin
    from ..store import Datastore

    settings = ctx.obj["settings"]
    ds = Datastore(_remote_root(settings))
    _, _, name = _deployment(ctx, flow_cls)
    check_origin(ds, flow_cls.__name__, run_id, option="RUN_ID")
    return workflow_from_template(name, settings.extra.get(NAMESPACE_ENV, "default"), {ORIGIN_RUN_PARAMETER: run_id})
