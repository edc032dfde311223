"""``python flow.py [--environment=pypi] environment resolve|show``: what each step's environment
holds (interface layer).

``resolve`` resolves every step's request as a run would (nothing is built) and prints, per step,
the tool, Python and pinned packages; ``show`` prints what a run recorded (the latest run of the
flow, or ``--run-id``). ``--json`` gives the same as one JSON object per command.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import click

from .errors import guarded


def _lines(step: str, lock: dict[str, Any] | None) -> list[str]:
    if lock is None:
        return [f"{step}: the launching environment"]
    head = f"{step}: {lock['kind']} python {lock['python']} (lock {lock['digest'][:12]})"
    pkgs = [f"    {p['name']}=={p['version']}" for p in lock["packages"]] or ["    (no packages)"]
    return [head, *pkgs]


def _describe(steps: dict[str, Any], locks: dict[str, dict[str, Any]], as_json: bool) -> None:
    view = {step: ({**locks[d], "digest": d} if d is not None else None) for step, d in steps.items()}
    if as_json:
        click.echo(json.dumps({step: ({k: v for k, v in lk.items() if k != "text"} if lk else None)
                               for step, lk in view.items()}, indent=2))
        return
    for step, lock in view.items():
        click.echo("\n".join(_lines(step, lock)))


def add_environment_commands(cli: click.Group, flow_cls: type) -> None:
    """Add the ``environment`` group to the flow's CLI."""

    @cli.group(help="Resolve or show the Python environments of the flow's steps (@pypi, @conda, uv).")
    def environment() -> None:
        pass

    @environment.command(help="Resolve each step's environment again (nothing is built), cache the locks for "
                              "the next runs, and print the packages.")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @click.pass_context
    def resolve(ctx: click.Context, as_json: bool) -> None:
        obj = ctx.find_root().obj

        def go() -> None:
            from ..environments.prepare import resolve_steps
            from ..flow.decorators import validate_step_decorators
            from ..flow.environment_decorators import step_env_requests
            from ..flow.mutators import prepare_flow

            prepare_flow(flow_cls, obj["decospecs"])
            flow_cls._graph.validate()
            validate_step_decorators(flow_cls)
            steps = list(flow_cls._graph.sorted_nodes)
            requests = step_env_requests(flow_cls, steps, obj["top"]["environment"],
                                         project_dir=os.path.dirname(os.path.abspath(sys.argv[0])))
            locks = resolve_steps(requests, obj["settings"], refresh=True)  # and caches the new locks
            digests = {s: (locks[s].digest() if s in locks else None) for s in steps}
            _describe(digests, {lk.digest(): lk.to_json() for lk in locks.values()}, as_json)

        guarded(go)

    @environment.command(help="Show the environments a run used (default: the flow's latest run).")
    @click.option("--run-id", default=None, help="The run to show.")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @click.pass_context
    def show(ctx: click.Context, run_id: str | None, as_json: bool) -> None:
        obj = ctx.find_root().obj

        def go() -> None:
            from ..environments.prepare import RUN_RECORD_FIELD
            from ..exceptions import CommandException
            from ..store import Datastore

            ds = Datastore(obj["settings"].datastore_root)
            name = flow_cls.__name__
            rid = run_id
            if rid is None:
                runs = sorted((r for r in ds.records.runs(name) if r.isdigit()), key=int) if ds.exists() else []
                if not runs:
                    raise CommandException(f"{name} has no runs yet.", hint="Run the flow first.")
                rid = runs[-1]
            try:
                rec = ds.records.read_run(name, rid)
            except (KeyError, FileNotFoundError, OSError):
                raise CommandException(f"There is no run {name}/{rid}.", hint="Check the run id.") from None
            envs = rec.get(RUN_RECORD_FIELD) or {"steps": {}, "locks": {}}
            steps = {s: envs["steps"].get(s) for s in flow_cls._graph.sorted_nodes}
            if not as_json:
                click.echo(f"Run {name}/{rid}:")
            _describe(steps, envs["locks"], as_json)

        guarded(go)


__all__ = ["add_environment_commands"]
