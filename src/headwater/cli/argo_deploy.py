"""Compile a flow into the Argo objects of its deployment (interface layer).

What every ``argo-workflows`` command shares: the flow prepared for Argo (graph, ``@project``
fields, the deployment's name), the objects ``create`` deploys or prints (WorkflowTemplate,
CronWorkflow of ``@schedule``, Sensor of ``@trigger``), and the Workflow ``resume`` submits.
``cli/argo_cmds.py`` (the commands) and ``cli/argo_server_cmds.py`` (what talks to the
cluster) both import it; it imports neither.

Names and images come from ``Settings`` (environment, then the config file), the same fields
the Argo client and the Kubernetes Job builder read.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from ..compute.commands import DEFAULT_IMAGE
from ..exceptions import HeadwaterException
from .errors import guarded

#: The setting naming the image of every task when --image does not (``Settings.kubernetes_container_image``).
IMAGE_ENV = "HEADWATER_KUBERNETES_CONTAINER_IMAGE"


class ArgoCommandError(HeadwaterException):
    """An ``argo-workflows`` command that cannot do what was asked (nothing deployed, a bad state...)."""

    headline = "Argo Workflows error"


class RunIdMismatch(HeadwaterException):
    """A run id that is not a run of this flow (or branch) on Argo Workflows."""

    headline = "Run ID mismatch"


def remote_root(settings: Any) -> str:
    """The datastore root an Argo run uses; an error for a local one (pods cannot share it)."""
    from ..store.roots import is_local_root

    root = settings.datastore_root
    if is_local_root(root):
        raise ArgoCommandError(f"Argo Workflows needs an S3 datastore; this command uses the local one ({root}).",
                               hint="Pass --datastore=s3 (with HEADWATER_DATASTORE_SYSROOT_S3 set) or "
                                    "--datastore-root s3://bucket/prefix.")
    return root


def deployment(ctx: click.Context, flow_cls: type) -> tuple[Any, dict[str, Any], str]:
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


def compile_deployment(ctx: click.Context, flow_cls: type, opts: dict[str, Any]) -> list[dict[str, Any]]:
    """The objects of the flow's deployment, the WorkflowTemplate first (then the CronWorkflow of
    ``@schedule`` and the Sensor of ``@trigger``); the code package is stored in the datastore.

    Parameters
    ----------
    ctx : click.Context
        The ``argo-workflows`` command's context (settings, top-level options, ``--name``).
    flow_cls : type
        The flow class.
    opts : dict
        ``create``'s options: ``image``, ``max_workers``, ``workflow_timeout``, ``workflow_priority``,
        ``tags``, ``user_namespace``, ``auto_emit_argo_events``.
    """
    from ..flow.flow_decorators import flow_option_args
    from ..compute.argo.compile import CompileOptions, compile_cron_workflow, compile_workflow_template
    from ..compute.argo.settings import flow_parameters_for_argo, step_settings
    from ..flow.schedule import flow_schedule
    from ..package import build_package, parse_suffixes
    from ..package.stored import save_package
    from ..store import Datastore
    from ..store.pins import deployment_root

    settings = ctx.obj["settings"]
    root = remote_root(settings)
    graph, fields, name = deployment(ctx, flow_cls)
    script = os.path.abspath(sys.argv[0])
    pkg = build_package(script, parse_suffixes(ctx.obj["top"]["package_suffixes"]))
    # Stored now, as Metaflow does even with --only-json: the pods fetch it by this key.
    content = Datastore(root).content
    content.root_name = deployment_root("argo-workflows", name)  # the template names it: gc keeps it
    package = guarded(lambda: save_package(content, pkg))
    env = {"HEADWATER_S3_ENDPOINT_URL": settings.s3_endpoint_url} if settings.s3_endpoint_url else {}
    if settings.user:
        env["HEADWATER_USER"] = settings.user
    labels = {}
    if "project_name" in fields:
        labels = {"headwater/project": fields["project_name"],
                  "headwater/branch": fields["branch_name"].replace("user.", "user-").replace(".", "-")[:63]}
    copts = CompileOptions(
        name=name, image=opts["image"] or settings.kubernetes_container_image or DEFAULT_IMAGE,
        datastore_root=root, package_key=package["key"], flow_file=pkg.script,
        namespace=settings.kubernetes_namespace, max_workers=opts["max_workers"],
        workflow_timeout=opts["workflow_timeout"], workflow_priority=opts["workflow_priority"],
        tags=tuple(opts["tags"]), user_namespace=opts["user_namespace"],
        flow_args=flow_option_args(ctx.obj["flow_options"]), env=env, labels=labels,
        secrets=tuple(settings.kubernetes_secrets), service_account=settings.kubernetes_service_account)
    steps = step_settings(flow_cls, k8s_secrets=settings.kubernetes_secrets,
                          k8s_service_account=settings.kubernetes_service_account)
    steps = guarded(lambda: _with_environments(ctx, flow_cls, graph, steps, settings, root, name))
    params = guarded(lambda: upload_included_files(flow_cls, flow_parameters_for_argo(flow_cls), root))
    objects = [compile_workflow_template(graph, steps, params, copts)]
    sched = flow_schedule(flow_cls)
    if sched is not None and sched.schedule is not None:
        objects.append(compile_cron_workflow(name, copts.namespace, sched.schedule, sched.timezone))
    return _add_events(objects, flow_cls, graph, params, copts, fields, settings,
                       auto_emit=opts["auto_emit_argo_events"])


def _with_environments(ctx: click.Context, flow_cls: type, graph: Any, steps: dict[str, Any], settings: Any,
                       root: str, deployed: str) -> dict[str, Any]:
    """``steps`` with the environment of each step that has one (``@pypi``, ``@conda``,
    ``--environment=uv``): resolved now, its lock stored in the datastore beside the code package,
    so every pod of every run of the deployment builds the same environment."""
    import dataclasses

    from ..flow.environment_decorators import step_env_requests

    requests = step_env_requests(flow_cls, graph.sorted_nodes, ctx.obj["top"]["environment"],
                                 project_dir=os.path.dirname(os.path.abspath(sys.argv[0])))
    if not any(r is not None for r in requests.values()):
        return steps
    from ..environments.prepare import resolve_steps
    from ..environments.remote import RemoteEnvironments
    from ..store import Datastore
    from ..store.pins import deployment_root

    locks = resolve_steps(requests, settings, echo=lambda message: click.echo(message, err=True))
    remote = RemoteEnvironments(locks, settings)
    content = Datastore(root).content
    content.root_name = deployment_root("argo-workflows", deployed)  # the template names the locks
    return {name: dataclasses.replace(s, environment=remote.for_step(name, content)) for name, s in steps.items()}


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


def resume_workflow(ctx: click.Context, flow_cls: type, run_id: str) -> dict[str, Any]:
    """The Workflow that resumes ``run_id``: the deployed template, started with ``origin-run-id``
    (after checking, in the datastore, that ``run_id`` is a run of the flow that can be resumed)."""
    from ..compute.argo.naming import ORIGIN_RUN_PARAMETER
    from ..compute.argo.submit import workflow_from_template
    from ..runtime.resume import check_origin
    from ..store import Datastore

    settings = ctx.obj["settings"]
    ds = Datastore(remote_root(settings))
    _, _, name = deployment(ctx, flow_cls)
    check_origin(ds, flow_cls.__name__, run_id, option="RUN_ID")
    return workflow_from_template(name, settings.kubernetes_namespace, {ORIGIN_RUN_PARAMETER: run_id})


#: Where ``create`` puts the files that IncludeFile defaults name (under the datastore root).
INCLUDED_FILES_PREFIX = "includefiles"


def upload_included_files(flow_cls: type, params: list[Any], root: str) -> list[Any]:
    """``params`` with each IncludeFile default that names a local file replaced by the S3 URL of a
    copy stored now under the datastore root (content-addressed), as Metaflow uploads it at deploy
    time: the path means nothing in the pods that run ``init``."""
    import dataclasses

    import blake3

    from ..exceptions import ParameterError
    from ..flow.parameters import flow_parameters
    from ..store import Datastore

    includes = {p.name: p for p in flow_parameters(flow_cls) if getattr(p, "IS_INCLUDE_FILE", False)}
    out = []
    objects = None
    for fp in params:
        path = fp.default
        if fp.name in includes and path and "://" not in path:
            try:
                with open(os.path.expanduser(path), "rb") as f:
                    data = f.read()
            except OSError as e:
                raise ParameterError(f"IncludeFile '--{fp.name}': cannot read its default {path!r} ({e.strerror}).",
                                     hint="`create` uploads the file the default names: make it readable here.") \
                    from None
            key = f"{INCLUDED_FILES_PREFIX}/{blake3.blake3(data).hexdigest()}/{os.path.basename(path)}"
            objects = objects or Datastore(root).objects
            if not objects.exists(key):
                objects.put(key, data)
            fp = dataclasses.replace(fp, default=f"{root.rstrip('/')}/{key}")
        out.append(fp)
    return out
