"""``python flow.py argo-workflows ...``: compile the flow for Argo Workflows (interface layer).

``create --only-json`` prints the WorkflowTemplate (and the CronWorkflow of ``@schedule``, the
Sensor of ``@trigger`` / ``@trigger_on_finish``) that would be created, with Metaflow's option
names; ``resume RUN_ID --only-json`` prints the Workflow that resumes a failed run of it. Every
command that needs an Argo server (``create`` without ``--only-json``, ``trigger``, ``delete``,
...) says so: no server is reachable from here yet.
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


class ArgoCommandError(HeadwaterException):
    headline = "Argo Workflows error"


def _needs_cluster(what: str) -> None:
    raise ArgoCommandError(f"`argo-workflows {what}` needs an Argo Workflows server, and headwater cannot "
                           "reach one yet.",
                           hint="Use `argo-workflows create --only-json` to see what would be created, and "
                                "apply it with `kubectl apply -f` or `argo template create`.")


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
        tags=tuple(opts["tags"]), user_namespace=opts["user_namespace"], env=env, labels=labels)
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


def add_argo_commands(cli: click.Group, flow_cls: type) -> None:
    """Add the ``argo-workflows`` command group to the per-flow CLI of ``flow_cls``."""

    @cli.group("argo-workflows", help="Commands related to Argo Workflows.")
    @click.option("--name", default=None, type=str,
                  help="Argo Workflow name. The flow name is used instead if this option is not specified.")
    @click.pass_context
    def argo_workflows(ctx: click.Context, name: str | None) -> None:
        ctx.obj["argo_name"] = name

    @argo_workflows.command(help="Deploy a new version of this workflow to Argo Workflows.")
    @click.option("--authorize", default=None, help="Authorize using this production token.")
    @click.option("--generate-new-token", is_flag=True, help="Generate a new production token for this flow.")
    @click.option("--new-token", "given_token", default=None, help="Use the given production token for this flow.")
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
    @click.pass_context
    def create(ctx: click.Context, only_json: bool, **opts: Any) -> None:
        from .flow_cli import _banner

        _banner(ctx, flow_cls)
        if not only_json:
            guarded(lambda: _needs_cluster("create"))
        objects = guarded(lambda: _compile(ctx, flow_cls, opts))
        # One JSON document: the template alone, or a List (as kubectl apply takes it) with the CronWorkflow
        # and the Sensor.
        doc = objects[0] if len(objects) == 1 else {"apiVersion": "v1", "kind": "List", "items": objects}
        click.echo(json.dumps(doc, indent=2))

    @argo_workflows.command(help="Resume a failed run on Argo Workflows: a new run clones the tasks of RUN_ID "
                                 "that succeeded upstream of the failure and runs the rest.")
    @click.argument("run_id")
    @click.option("--only-json", is_flag=True, default=False,
                  help="Only print the Workflow that would be submitted; submit nothing.")
    @click.pass_context
    def resume(ctx: click.Context, run_id: str, only_json: bool) -> None:
        from .flow_cli import _banner

        _banner(ctx, flow_cls)
        workflow = guarded(lambda: _resume_workflow(ctx, flow_cls, run_id))
        if not only_json:
            guarded(lambda: _needs_cluster("resume"))
        click.echo(json.dumps(workflow, indent=2))

    for sub, helptext, takes_run in (
        ("trigger", "Trigger the workflow on Argo Workflows.", False),
        ("delete", "Delete the flow on Argo Workflows.", False),
        ("status", "Fetch flow execution status on Argo Workflows.", True),
        ("terminate", "Terminate flow execution on Argo Workflows.", True),
        ("suspend", "Suspend flow execution on Argo Workflows.", True),
        ("unsuspend", "Unsuspend flow execution on Argo Workflows.", True),
        ("list-workflow-templates", "List Argo Workflow templates for the flow.", False),
    ):
        params: list[click.Parameter] = [click.Argument(["run_id"])] if takes_run else []
        argo_workflows.add_command(click.Command(
            sub, help=helptext, params=params, context_settings={"ignore_unknown_options": True,
                                                                 "allow_extra_args": True},
            callback=lambda sub=sub, **_: guarded(lambda: _needs_cluster(sub))))


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
