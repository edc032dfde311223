"""``python flow.py kubernetes list|kill``: the flow's unfinished task Jobs on Kubernetes
(interface layer).

As Metaflow's commands: by default the Jobs of your runs (``--my-runs``), or of
``--user``, or of one ``--run-id``; in the configured namespace
(``HEADWATER_KUBERNETES_NAMESPACE``). ``kill`` deletes each unfinished Job with
its pod, which stops the task (a step with ``@retry`` may then start another attempt).
"""

from __future__ import annotations

from typing import Any

import click

from .errors import guarded

_RUN_ID = click.option("--run-id", default=None, help="Only the Jobs of this run.")
_USER = click.option("--user", default=None, help="Only the Jobs of this user's runs.")
_MY_RUNS = click.option("--my-runs", is_flag=True, default=False, help="Only the Jobs of your runs (the default).")


def _unfinished(ctx: click.Context, flow: str, run_id: str | None, user: str | None,
                my_runs: bool) -> tuple[Any, str, list[dict[str, Any]]]:
    from ..compute.kubernetes.api import JobApi, job_phase, run_selector

    settings = ctx.obj["settings"]
    if run_id is None and user is None:
        user = settings.require_user()  # --my-runs, Metaflow's default
    api = JobApi.from_config()
    namespace = settings.kubernetes_namespace
    jobs = api.list_jobs(namespace, run_selector(flow, run_id, user=user))
    return api, namespace, [j for j in jobs if not job_phase(j).finished]


def _describe(job: dict[str, Any]) -> str:
    from ..compute.kubernetes.api import job_phase
    from ..compute.kubernetes.job import LABEL_PREFIX

    notes = job["metadata"].get("annotations") or {}
    pathspec = "/".join(notes.get(LABEL_PREFIX + k, "?") for k in ("run", "step", "task"))
    started = (job.get("status") or {}).get("startTime") or "-"
    return (f"Run: *{notes.get(LABEL_PREFIX + 'run', '?')}* Task: *{pathspec}* Job: *{job['metadata']['name']}* "
            f"Started At: {started} Status: *{job_phase(job).value}*")


def add_kubernetes_commands(cli: click.Group, flow_cls: type) -> None:
    """Add the ``kubernetes`` command group to the per-flow CLI of ``flow_cls``."""
    flow = flow_cls.__name__

    @cli.group(help="Commands related to Kubernetes.")
    def kubernetes() -> None:
        pass

    @kubernetes.command(name="list", help="List unfinished Kubernetes tasks of this flow.")
    @_MY_RUNS
    @_USER
    @_RUN_ID
    @click.pass_context
    def list_(ctx: click.Context, my_runs: bool, user: str | None, run_id: str | None) -> None:
        _, _, jobs = guarded(lambda: _unfinished(ctx, flow, run_id, user, my_runs))
        for job in jobs:
            click.echo(_describe(job), err=True)
        if not jobs:
            click.echo("No active Kubernetes pods found.", err=True)

    @kubernetes.command(help="Terminate unfinished Kubernetes tasks of this flow. Killed tasks may get "
                             "newer attempts when using @retry.")
    @_MY_RUNS
    @_USER
    @_RUN_ID
    @click.pass_context
    def kill(ctx: click.Context, my_runs: bool, user: str | None, run_id: str | None) -> None:
        api, namespace, jobs = guarded(lambda: _unfinished(ctx, flow, run_id, user, my_runs))
        for job in jobs:
            name = job["metadata"]["name"]
            click.echo(f"Killing Kubernetes Job {name}", err=True)
            guarded(lambda: api.delete(name, namespace))
        if not jobs:
            click.echo("No active Kubernetes pods found" + (f" for run *{run_id}*" if run_id else "") + ".", err=True)
