"""What the ``argo-workflows`` commands that talk to a cluster do (interface layer).

``cli/argo_cmds.py`` declares the commands (options, help); the functions here
do the work with ``compute.argo.client.ArgoClient`` and print Metaflow's texts:
progress and notes on stderr, the answer (a status, template names) on stdout.
"""

from __future__ import annotations

import json
from typing import Any

import click

from ..compute.argo.client import ArgoClient, ArgoKind
from ..compute.argo.naming import (BRANCH_ANNOTATION, FLOW_ANNOTATION, OWNER_ANNOTATION, PROJECT_ANNOTATION,
                                   RUN_ID_PREFIX, SENSOR_NAME_ANNOTATION, SENSOR_NAMESPACE_ANNOTATION, TOKEN_ANNOTATION,
                                   TRIGGERED_BY_ANNOTATION, run_id as run_id_of, workflow_of)
from ..compute.argo.tokens import Deployment
from .argo_deploy import ArgoCommandError, RunIdMismatch, compile_deployment, deployment


def _say(text: str = "") -> None:
    click.echo(text, err=True)


def _client(ctx: click.Context) -> ArgoClient:
    return ArgoClient.from_config(ctx.obj["settings"].kubernetes_namespace)


def _deployed(template: dict[str, Any] | None) -> Deployment | None:
    """Owner and token of a deployed template; an error for a template headwater did not deploy."""
    if template is None:
        return None
    notes = template["metadata"].get("annotations") or {}
    if OWNER_ANNOTATION not in notes or TOKEN_ANNOTATION not in notes:
        name = template["metadata"]["name"]
        raise ArgoCommandError(f"An existing WorkflowTemplate named {name!r}, not deployed by headwater, is "
                               "already on Argo Workflows.",
                               hint="Choose another name with `argo-workflows --name NAME`, or delete the "
                                    "existing template first.")
    return Deployment(owner=notes[OWNER_ANNOTATION], token=notes[TOKEN_ANNOTATION])


def write_attributes(path: str | None, payload: dict[str, Any]) -> None:
    """The hidden ``--deployer-attribute-file``: what the Deployer reads back (JSON)."""
    if path:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(payload, f)


# ---- create --------------------------------------------------------------------------------------
def _resolve_token(ctx: click.Context, name: str, deployment: Deployment | None, *, authorize: str | None,
                   given_token: str | None, generate_new_token: bool, is_project: bool) -> str:
    from ..compute.argo.tokens import check_authorized, load_token, new_token, store_token, strip_namespace

    settings = ctx.obj["settings"]
    if deployment is None:
        _say(f"It seems this is the first time you are deploying *{name}* to Argo Workflows.")
    check_authorized(deployment, user=settings.require_user(), authorize=authorize,
                     stored=load_token(settings.home, name), what=f"*{name}*", command="argo-workflows create")
    if given_token:
        if is_project:
            raise ArgoCommandError("--new-token is not supported for @projects.",
                                   hint="Use --generate-new-token to create a new token.")
        token = strip_namespace(given_token)
        _say()
        _say(f"Using the given token, *{token}*.")
    elif deployment is None or generate_new_token:
        token = new_token(name)
        _say()
        _say("A new production token generated.")
    else:
        token = deployment.token
    _say()
    _say("The namespace of this production flow is")
    _say(f"    production:{token}")
    _say("To analyze results of this production flow add this line in your notebooks:")
    _say(f'    namespace("production:{token}")')
    _say("If you want to authorize other people to deploy new versions of this flow to Argo Workflows, they "
         "need to call")
    _say(f"    argo-workflows create --authorize {token}")
    _say("when deploying this flow to Argo Workflows for the first time.")
    _say()
    store_token(settings.home, name, token)  # remembered in this user's home, as Metaflow does
    return token


def deploy(ctx: click.Context, flow_cls: type, opts: dict[str, Any], *, authorize: str | None,
           given_token: str | None, generate_new_token: bool) -> list[dict[str, Any]]:
    """``create``: compile, resolve the production token, apply every object; the applied objects."""
    from ..compute.argo.compile import with_production_token
    from ..flow.flow_decorators import flow_current_fields

    settings = ctx.obj["settings"]
    _say(f"Deploying *{flow_cls.__name__}* to Argo Workflows...")
    objects = compile_deployment(ctx, flow_cls, opts)
    name = objects[0]["metadata"]["name"]
    fields = flow_current_fields(flow_cls)  # @project's, set up by compile_deployment
    client = _client(ctx)
    previous = client.get(ArgoKind.WORKFLOW_TEMPLATE, name)
    token = _resolve_token(ctx, name, _deployed(previous), authorize=authorize, given_token=given_token,
                           generate_new_token=generate_new_token, is_project="project_name" in fields)
    template = with_production_token(objects[0], token)
    notes = template["metadata"].setdefault("annotations", {})
    notes.update({OWNER_ANNOTATION: settings.require_user(), TOKEN_ANNOTATION: token})
    if "project_name" in fields:
        notes.update({PROJECT_ANNOTATION: fields["project_name"], BRANCH_ANNOTATION: fields["branch_name"]})
    sensors = _sensors(template, client.namespace)  # recorded by the compiler (sensors.trigger_annotations)
    for obj in objects:  # the template first: the CronWorkflow and Sensors refer to it
        client.apply(obj)  # each in its own namespace (Sensors may live apart from the workflows)
    # What the previous version deployed and this one does not (a removed @schedule or @trigger, or a
    # Sensor that moved to another namespace) goes.
    kinds = {o["kind"] for o in objects}
    if ArgoKind.CRON_WORKFLOW.value not in kinds:
        client.delete(ArgoKind.CRON_WORKFLOW, name)
    for old in _sensors(previous, client.namespace):
        if old not in sensors:
            client.delete(ArgoKind.SENSOR, *old)
    _say(f"Workflow *{name}* for flow *{flow_cls.__name__}* deployed to Argo Workflows successfully.\n")
    _say("What will trigger execution of the workflow:")
    _say("    " + _trigger_explanation(name, kinds))
    return objects


def _sensors(template: dict[str, Any] | None, default_namespace: str) -> list[tuple[str, str]]:
    """``(name, namespace)`` of the Sensor a template records in its annotations (none: no Sensor)."""
    notes = (template or {}).get("metadata", {}).get("annotations") or {}
    name = notes.get(SENSOR_NAME_ANNOTATION)
    return [(name, notes.get(SENSOR_NAMESPACE_ANNOTATION) or default_namespace)] if name else []


def _trigger_explanation(name: str, kinds: set[str]) -> str:
    ways = []
    if ArgoKind.CRON_WORKFLOW.value in kinds:
        ways.append(f"This workflow triggers automatically via the CronWorkflow *{name}*.")
    if ArgoKind.SENSOR.value in kinds:
        ways.append("This workflow triggers automatically when the events of its sensors are published.")
    return "\n    ".join(ways) or "No triggers defined. You need to launch this workflow manually."


# ---- trigger -------------------------------------------------------------------------------------
def _deployed_template(ctx: click.Context, flow_cls: type) -> tuple[ArgoClient, str, dict[str, Any]]:
    """The client, the name and the WorkflowTemplate of this flow's deployment (an error if none)."""
    _, _, name = deployment(ctx, flow_cls)
    client = _client(ctx)
    template = client.get(ArgoKind.WORKFLOW_TEMPLATE, name)
    if template is None:
        raise ArgoCommandError(f"The workflow *{name}* doesn't exist on Argo Workflows in namespace "
                               f"*{client.namespace}*.",
                               hint="Please deploy your flow first: `argo-workflows create`.")
    _deployed(template)  # a template headwater deployed
    return client, name, template


def _submit(ctx: click.Context, client: ArgoClient, template: dict[str, Any], workflow: dict[str, Any],
            run_id_file: str | None) -> str:
    """Submit ``workflow`` (a run of ``template``); its run id, also written to ``run_id_file``."""
    # The deployment's annotations go with the run, so commands on it can check whose it is.
    workflow["metadata"]["annotations"] = {**(template["metadata"].get("annotations") or {}),
                                           TRIGGERED_BY_ANNOTATION: ctx.obj["settings"].user or "unknown"}
    created = client.submit(workflow)
    run_id = run_id_of(created["metadata"]["name"])
    if run_id_file:
        with open(run_id_file, "w") as f:
            f.write(run_id)
    return run_id


def trigger(ctx: click.Context, flow_cls: type, parameters: dict[str, str], *, run_id_file: str | None,
            deployer_attribute_file: str | None) -> str:
    """Start a run of the deployed template with ``parameters``; its run id."""
    from ..compute.argo.submit import workflow_from_template

    settings = ctx.obj["settings"]
    client, name, template = _deployed_template(ctx, flow_cls)
    declared = [p["name"] for p in (template["spec"].get("arguments") or {}).get("parameters", [])]
    unknown = sorted(set(parameters) - set(declared))
    if unknown:
        raise ArgoCommandError(f"The deployed workflow *{name}* has no parameters {unknown}.",
                               hint="Deploy the current version of the flow with `argo-workflows create`.")
    run_id = _submit(ctx, client, template, workflow_from_template(name, client.namespace, parameters), run_id_file)
    write_attributes(deployer_attribute_file, {
        "name": name, "flow_name": flow_cls.__name__, "metadata": metadata_str(settings),
        "datastore_root": settings.datastore_root, "pathspec": f"{flow_cls.__name__}/{run_id}"})
    _say(f"Workflow *{name}* triggered on Argo Workflows (run-id *{run_id}*).")
    return run_id


def submit_resume(ctx: click.Context, flow_cls: type, origin_run_id: str, workflow: dict[str, Any], *,
                  run_id_file: str | None) -> str:
    """Submit the Workflow that resumes ``origin_run_id`` (``argo-workflows resume``); the new run's id.

    The origin run must have ended: a resumed run clones what the origin has finished when it
    starts, so resuming one still running (or suspended) would run its unfinished tasks twice.
    """
    client, name, template = _deployed_template(ctx, flow_cls)
    _check_ended(client, origin_run_id)
    run_id = _submit(ctx, client, template, workflow, run_id_file)
    _say(f"Workflow *{name}* resumed on Argo Workflows (run-id *{run_id}*).")
    return run_id


def _check_ended(client: ArgoClient, run_id: str) -> None:
    """Refuse to resume a run whose Workflow is still on the cluster and has not finished."""
    from ..compute.argo.client import is_finished, workflow_phase

    name = workflow_of(run_id)
    wf = client.get(ArgoKind.WORKFLOW, name) if name is not None else None
    if wf is None:  # not an Argo run, or its Workflow was deleted: it runs no more
        return
    if not is_finished(wf):
        suspended = (wf.get("spec") or {}).get("suspend") is True
        state = "suspended" if suspended else workflow_phase(wf).value.lower()
        raise ArgoCommandError(f"The run *{run_id}* is still {state} on Argo Workflows; only a run that has "
                               "ended (Succeeded, Failed or Error) can be resumed.",
                               hint=f"Wait for it to end, or terminate it first: `argo-workflows terminate {run_id}`, "
                                    f"then `argo-workflows resume {run_id}`.")


def metadata_str(settings: Any) -> str:
    return f"{settings.metadata}@{settings.datastore_root}"


def trigger_value(p: Any, value: Any) -> str:
    """A parameter's value as the workflow argument's text (what ``init --NAME`` parses)."""
    from ..flow.parameters import JSONTypeClass

    if isinstance(p.type, JSONTypeClass):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# ---- runs ----------------------------------------------------------------------------------------
def _workflow_of(run_id: str) -> str:
    name = workflow_of(run_id)
    if name is None:
        raise RunIdMismatch(f"Run IDs for flows executed through Argo Workflows begin with {RUN_ID_PREFIX!r}; "
                            f"got {run_id!r}.",
                            hint=f"Pass the run id `trigger` printed ({RUN_ID_PREFIX}<workflow name>).")
    return name


def status(ctx: click.Context, flow_cls: type, run_id: str) -> str:
    """The run's status, as Metaflow words it (``compute.argo.client.run_status``)."""
    from ..compute.argo.client import run_status

    name = _workflow_of(run_id)
    flow = flow_cls.__name__
    _say(f"Fetching status for run *{run_id}* for {flow} ...")
    wf = _client(ctx).get(ArgoKind.WORKFLOW, name)
    if wf is None:
        raise ArgoCommandError(f"No execution found for {flow}/{run_id} in Argo Workflows.",
                               hint="Check the run id; `argo-workflows trigger` prints it.")
    return run_status(wf, run_exists(flow, run_id, ctx.obj["settings"].datastore_root))


def run_exists(flow: str, run_id: str, root: str) -> bool:
    from ..client.core import open_run
    from ..exceptions import HeadwaterNotFound

    try:
        open_run(f"{flow}/{run_id}", root)
    except HeadwaterNotFound:
        return False
    return True


def _check_run(ctx: click.Context, flow_cls: type, run_id: str, authorize: str | None,
               command: str) -> tuple[ArgoClient, str]:
    """The run's Workflow name, after checking it is a run of this flow (and branch) you may change."""
    from ..compute.argo.tokens import check_authorized, load_token

    name = _workflow_of(run_id)
    _, fields, template_name = deployment(ctx, flow_cls)
    client = _client(ctx)
    wf = client.get(ArgoKind.WORKFLOW, name)
    if wf is None:
        raise ArgoCommandError(f"Could not find workflow *{name}* on Argo Workflows in namespace "
                               f"*{client.namespace}*.", hint="Check the run id; `argo-workflows trigger` prints it.")
    notes = wf["metadata"].get("annotations") or {}
    if OWNER_ANNOTATION not in notes:
        # Started by the deployment's CronWorkflow or Sensor: its template says whose it is.
        ref = (wf.get("spec") or {}).get("workflowTemplateRef", {}).get("name")
        template = client.get(ArgoKind.WORKFLOW_TEMPLATE, ref) if ref else None
        notes = (template or {}).get("metadata", {}).get("annotations") or {}
    if OWNER_ANNOTATION not in notes:
        raise ArgoCommandError(f"The workflow *{name}* was not started from a headwater deployment.")
    if notes.get(FLOW_ANNOTATION) != flow_cls.__name__:
        raise RunIdMismatch(f"The workflow with the run_id *{run_id}* belongs to the flow "
                            f"*{notes.get(FLOW_ANNOTATION)}*, not to the flow *{flow_cls.__name__}*.")
    project = notes.get(PROJECT_ANNOTATION)
    if project is not None and fields.get("project_name") != project:
        raise RunIdMismatch(f"The workflow belongs to the project *{project}*.",
                            hint="Use the project decorator or --name to target the correct project.")
    branch = notes.get(BRANCH_ANNOTATION)
    if project is not None and fields.get("branch_name") != branch:
        raise RunIdMismatch(f"The workflow belongs to the branch *{branch}*.",
                            hint="Use --branch, --production or --name to target the correct branch.")
    check_authorized(Deployment(owner=notes[OWNER_ANNOTATION], token=notes.get(TOKEN_ANNOTATION, "")),
                     user=ctx.obj["settings"].require_user(), authorize=authorize,
                     stored=load_token(ctx.obj["settings"].home, template_name), what=f"*{template_name}*",
                     command=f"argo-workflows {command} RUN_ID")
    return client, name


def terminate(ctx: click.Context, flow_cls: type, run_id: str, authorize: str | None) -> None:
    client, name = _check_run(ctx, flow_cls, run_id, authorize, "terminate")
    _say(f"Terminating run *{run_id}* for {flow_cls.__name__} ...")
    client.terminate(name)
    _say("\nRun terminated.")


def suspend(ctx: click.Context, flow_cls: type, run_id: str, authorize: str | None) -> None:
    client, name = _check_run(ctx, flow_cls, run_id, authorize, "suspend")
    client.suspend(name)
    _say(f"Suspended execution of *{run_id}*")


def unsuspend(ctx: click.Context, flow_cls: type, run_id: str, authorize: str | None) -> None:
    client, name = _check_run(ctx, flow_cls, run_id, authorize, "unsuspend")
    client.unsuspend(name)
    _say(f"Unsuspended execution of *{run_id}*")


# ---- deployments ---------------------------------------------------------------------------------
def delete(ctx: click.Context, flow_cls: type, authorize: str | None) -> None:
    """Delete the deployment: its CronWorkflow, Sensors (in the namespace the template records) and
    WorkflowTemplate (runs in flight go on)."""
    from ..compute.argo.sensors import sensor_name
    from ..compute.argo.tokens import check_authorized, load_token

    _, _, name = deployment(ctx, flow_cls)
    client = _client(ctx)
    template = client.get(ArgoKind.WORKFLOW_TEMPLATE, name)
    check_authorized(_deployed(template), user=ctx.obj["settings"].require_user(), authorize=authorize,
                     stored=load_token(ctx.obj["settings"].home, name), what=f"*{name}*",
                     command="argo-workflows delete")
    _say(f"Deleting workflow *{name}*...")
    if client.delete(ArgoKind.CRON_WORKFLOW, name):
        _say(f"Deleting cronworkflow *{name}*...")
    for sensor, namespace in _sensors(template, client.namespace) or [(sensor_name(name), client.namespace)]:
        if client.delete(ArgoKind.SENSOR, sensor, namespace):
            _say(f"Deleting sensor *{sensor}*...")
    if template is None or not client.delete(ArgoKind.WORKFLOW_TEMPLATE, name):
        raise ArgoCommandError(f"The workflow *{name}* doesn't exist on Argo Workflows in namespace "
                               f"*{client.namespace}*.", hint="Nothing to delete; `argo-workflows "
                                                              "list-workflow-templates` lists what is deployed.")
    _say("Deleting Kubernetes resources may take a while. Deploying the flow again to Argo Workflows while the "
         "delete is in-flight will fail.")
    _say("In-flight executions will not be affected. If necessary, terminate them manually.")


def list_templates(ctx: click.Context, flow_name: str | None) -> list[str]:
    """Names of the deployed templates of ``flow_name`` (all templates for None)."""
    templates = _client(ctx).list(ArgoKind.WORKFLOW_TEMPLATE)
    return [t["metadata"]["name"] for t in templates
            if flow_name is None or (t["metadata"].get("annotations") or {}).get(FLOW_ANNOTATION) == flow_name]
