"""``python flow.py [OPTIONS] COMMAND``: the per-flow CLI (run, show, check, step).

Built with click when the flow module runs ``MyFlow()``; parameters of the flow
become options of ``run``. Commands import their layer inside the function body
so ``--help`` stays fast.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from .. import __version__
from ..config import load_settings
from ..exceptions import HeadwaterException
from ..top_options import TOP_OPTIONS
from .errors import guarded
from .top_options import click_params


class _JSONParam(click.ParamType):
    name = "JSON"

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        if not isinstance(value, str):
            return value
        from ..flow.parameters import JSONTooDeepError, JSONType

        try:
            return JSONType.convert(value)
        except JSONTooDeepError as e:
            self.fail(f"{e}.", param, ctx)
        except ValueError as e:
            self.fail(f"{value!r} is not valid JSON ({e}).", param, ctx)


def _click_option(p: Any) -> click.Option:
    from ..flow.parameters import JSONTypeClass

    envvar = "HEADWATER_RUN_" + p.name.upper().replace("-", "_")
    help_text = p.help or ""
    common: dict[str, Any] = dict(help=help_text, envvar=envvar, required=False, show_envvar=False)
    default_shown = None if callable(p.default) else p.default
    if p.show_default and default_shown is not None:
        common["help"] = (help_text + f"  [default: {default_shown}]").strip()
    if p.IS_INCLUDE_FILE:
        return click.Option([f"--{p.name}", p.attr_name], type=str, metavar="PATH", **common)
    if p.type is bool:  # a value, as in Metaflow: --flag true / --flag false
        return click.Option([f"--{p.name}", p.attr_name], type=click.BOOL, **common)
    if isinstance(p.type, JSONTypeClass):
        return click.Option([f"--{p.name}", p.attr_name], type=_JSONParam(), metavar="JSON", **common)
    ctype = {int: click.INT, float: click.FLOAT, str: click.STRING}[p.type]
    return click.Option([f"--{p.name}", p.attr_name], type=ctype, **common)


def _banner(ctx: click.Context, flow_cls: type) -> None:
    obj = ctx.obj
    if not obj["quiet"]:
        user = obj["settings"].user or "?"
        click.echo(f"headwater {__version__} executing {flow_cls.__name__} for user:{user}", err=True)


def _lint_or_raise(flow_cls: type) -> Any:
    from ..flow.decorators import validate_step_decorators
    from ..flow.parameters import validate_parameters

    graph = flow_cls._graph
    graph.validate()
    validate_parameters(flow_cls)
    validate_step_decorators(flow_cls)
    return graph


def _finish(outcome: Any) -> int:
    if outcome.ok:
        return 0
    step, task = outcome.failed[0]
    click.echo(f"Step failure: Step {step} (task-id {task}) failed.", err=True)
    return 1


_COMMON_RUN_OPTIONS = [
    ("--tag", "tags", dict(multiple=True, help="Annotate the run with this tag (repeatable).")),
    ("--max-workers", "max_workers", dict(type=int, default=16, show_default=True,
                                          envvar="HEADWATER_RUN_MAX_WORKERS", help="Most tasks running at once.")),
    ("--max-num-splits", "max_num_splits", dict(type=int, default=100, show_default=True,
                                                envvar="HEADWATER_RUN_MAX_NUM_SPLITS",
                                                help="Most tasks one foreach may create.")),
    ("--max-log-size", "max_log_size", dict(type=click.IntRange(min=1), default=10, show_default=True,
                                            help="Accepted for Metaflow compatibility, not enforced yet: headwater "
                                                 "keeps a task's whole stdout and stderr (megabytes).")),
    ("--with", "decospecs", dict(multiple=True, metavar="DECORATOR[:k=v,...]",
                                 help="Add a step decorator to every step, as the top-level --with does (repeatable).")),
    ("--run-id-file", "run_id_file", dict(default=None, metavar="FILE", help="Write the run id to this file.")),
    ("--runner-attribute-file", "runner_attribute_file",
     dict(default=None, metavar="FILE", help="Write the run's flow name, run id and datastore root as JSON to this "
                                             "file (used by the Runner).")),
]


def _common_run_options() -> list[click.Option]:
    return [click.Option([flag, name], **kw) for flag, name, kw in _COMMON_RUN_OPTIONS]


def _read_configs(flow_cls: type, command: str | None, files: tuple[tuple[str, str], ...],
                  values: tuple[tuple[str, str], ...], settings: Any) -> bool:
    """Fix the flow's configs from the command line, the environment and defaults. A
    ``step`` takes its run's recorded values and ``resume`` its origin's (see _execute).
    Returns whether configs were applied."""
    from ..flow.config import ConfigError, apply_configs, flow_configs
    from ..flow.config_sources import resolve_configs

    if command == "resume" and (files or values):
        raise ConfigError("resume reuses the configs of the run it resumes; --config and --config-value "
                          "cannot be given with resume.", hint="Drop --config/--config-value, or start a new run.")
    if command in ("resume", "step") or not flow_configs(flow_cls):
        return False
    apply_configs(flow_cls, resolve_configs(flow_cls, files=files, values=values, env=settings.extra,
                                            user=settings.user))
    return True


def build_cli(flow_cls: type) -> click.Group:
    from ..flow.flow_decorators import top_level_options
    from ..flow.mutators import run_mutators
    from ..flow.parameters import flow_parameters
    from .plugin_cmds import FlowCommandGroup

    run_mutators(flow_cls, "pre_mutate")  # before options are made: a mutator may add parameters
    params = flow_parameters(flow_cls)

    @click.group(cls=FlowCommandGroup, invoke_without_command=True, help=(flow_cls.__doc__ or "").strip() or None,
                 context_settings={"help_option_names": ["-h", "--help"]})
    @click.version_option(__version__, prog_name="headwater")
    @click.pass_context
    def cli(ctx: click.Context, **options: Any) -> None:
        top = {o.name: options.pop(o.name) for o in TOP_OPTIONS}
        settings = load_settings()
        settings = guarded(lambda: settings.with_datastore(top["datastore"] or settings.datastore,
                                                           top["datastore_root"]))
        if top["metadata"] != settings.metadata:
            settings = settings.with_(metadata=top["metadata"])
            # Tasks (forked or started as subprocesses) and the client inside them read the same provider.
            os.environ["HEADWATER_DEFAULT_METADATA"] = top["metadata"]
        ctx.obj = {"settings": settings, "quiet": top["quiet"], "decospecs": tuple(top["decospecs"]),
                   "top": top, "flow_options": options, "flow_cls": flow_cls}
        if guarded(lambda: _read_configs(flow_cls, ctx.invoked_subcommand, top["config"], top["config_value"],
                                         settings)):
            # Parameter defaults may come from configs: show and type them with their values.
            cli.commands["run"].params = run_params()
        if ctx.invoked_subcommand is None:
            ctx.invoke(check)

    cli.params[:0] = click_params()
    for opt, (_, kwargs) in top_level_options(flow_cls).items():
        cli.params.append(click.Option([f"--{opt}", opt.replace("-", "_")], **kwargs))

    @cli.command(help="Check the flow's graph for errors.")
    @click.option("--warnings", is_flag=True, default=False, help="Also show warnings.")
    @click.pass_context
    def check(ctx: click.Context, warnings: bool) -> None:
        _banner(ctx, flow_cls)
        guarded(lambda: _lint_or_raise(flow_cls))
        click.echo("Validating your flow...\n    The graph looks good!", err=True)

    @cli.command(help="Show the flow's steps, their docstrings and transitions.")
    @click.pass_context
    def show(ctx: click.Context) -> None:
        from ..flow.mutators import prepare_flow
        from ..flow.show import Stream, show_lines

        _banner(ctx, flow_cls)
        guarded(lambda: prepare_flow(flow_cls, ctx.obj["decospecs"]))  # --with and mutators' decorators show
        for stream, line in show_lines(flow_cls._graph, flow_cls):
            click.echo(line, err=stream is Stream.ERR)

    @cli.command(help="Print headwater's version.")
    @click.pass_context
    def version(ctx: click.Context) -> None:
        _banner(ctx, flow_cls)
        click.echo(__version__, err=True)  # stderr, as Metaflow prints it

    @cli.command("output-dot", help="Print the flow's graph in Graphviz dot syntax.")
    @click.pass_context
    def output_dot(ctx: click.Context) -> None:
        _banner(ctx, flow_cls)
        click.echo("Visualizing the flow as a GraphViz graph\n"
                   "    Try piping the output to 'dot -Tpng -o graph.png' to produce an actual image.", err=True)
        click.echo(flow_cls._graph.output_dot())

    def _execute(ctx: click.Context, **request: Any) -> None:
        _banner(ctx, flow_cls)
        settings = ctx.obj["settings"]

        def go() -> int:
            from ..flow.config import config_artifacts
            from ..flow.flow_decorators import init_flow_decorators
            from ..flow.mutators import prepare_flow
            from ..flow.parameters import flow_constants, resolve_parameters
            from ..plugins import plugin_index
            from ..environments.kinds import ExecutionEnvironment
            from ..runtime.run import RunRequest, execute_run

            plugin_index()  # scanned once here, inherited by every forked task
            decospecs = ctx.obj["decospecs"] + tuple(request["decospecs"])
            values: dict[str, Any] = {}
            origin = request.get("resume_from")
            if request.get("resume") and origin is None:
                from ..exceptions import CommandException
                from ..runtime.prefork import before_fork
                from ..runtime.run import resume_origin
                from ..store import Datastore

                chosen = before_fork(Datastore(settings.datastore_root),
                                     lambda: resume_origin(settings, flow_cls.__name__))
                for skipped_id, why in chosen.skipped:
                    click.echo(f"Skipping run {skipped_id} as the resume origin: {why}.", err=True)
                origin = chosen.run_id
                if origin is None:
                    raise CommandException(
                        f"There is no earlier run of {flow_cls.__name__} "
                        + ("that can be resumed." if chosen.skipped else "to resume."),
                        hint="Run the flow first, or pass --origin-run-id.")
            if origin is not None:
                from ..runtime.prefork import before_fork
                from ..runtime.resume import check_origin
                from ..store import Datastore

                ds = Datastore(settings.datastore_root)
                before_fork(ds, lambda: check_origin(ds, flow_cls.__name__, origin))
                _resume_configs(flow_cls, ds, origin)
            prepare_flow(flow_cls, decospecs)  # mutators see the configs' values
            graph = _lint_or_raise(flow_cls)
            init_flow_decorators(flow_cls, graph, ctx.obj["flow_options"])
            _announce_project(flow_cls, ctx.obj["quiet"])
            if not request.get("resume"):
                given = {p.name: request["param_values"].get(p.attr_name) for p in params}
                values = resolve_parameters(flow_cls, given, settings.require_user())
            req = RunRequest(
                flow_cls=flow_cls, graph=graph, script=os.path.abspath(sys.argv[0]), params=values,
                constants={**flow_constants(flow_cls), **config_artifacts(flow_cls)}, tags=tuple(request["tags"]),
                max_workers=request["max_workers"], max_num_splits=request["max_num_splits"],
                run_id_file=request["run_id_file"], runner_attribute_file=request["runner_attribute_file"],
                decospecs=decospecs,
                resume_from=origin, resume_step=request.get("resume_step"), namespace=request.get("namespace"),
                package_suffixes=ctx.obj["top"]["package_suffixes"],
                environment=ExecutionEnvironment(ctx.obj["top"]["environment"]),
            )
            # --quiet hides the banner and checks only: the run's console lines stay, as in Metaflow.
            _, outcome = execute_run(req, settings, _console_factory())
            return _finish(outcome)

        code = guarded(go)
        if code:
            raise SystemExit(code)

    common = [name for _, name, _ in _COMMON_RUN_OPTIONS]

    @click.pass_context
    def run(ctx: click.Context, user_namespace: str | None, **values: Any) -> None:
        _execute(ctx, **{k: values.pop(k) for k in common}, namespace=user_namespace, param_values=values)

    def run_params() -> list[click.Parameter]:
        namespace_opt = click.Option(
            ["--namespace", "user_namespace"], default=None, metavar="NAMESPACE",
            help="The client namespace inside the steps (default: user:<you>); --namespace= is the global one. "
                 "It does not change the run's own tags.")
        return _common_run_options() + [namespace_opt] + [_click_option(p) for p in flow_parameters(flow_cls)]

    cli.add_command(click.Command("run", callback=run, params=run_params(), help="Run the flow locally."))

    @click.pass_context
    def resume(ctx: click.Context, step_to_rerun: str | None, origin_run_id: str | None, **values: Any) -> None:
        _execute(ctx, **values, resume=True, resume_from=origin_run_id, resume_step=step_to_rerun)

    resume_params = [
        click.Argument(["step_to_rerun"], required=False),
        click.Option(["--origin-run-id"], default=None, help="The run to resume (default: your latest run)."),
    ] + _common_run_options()
    cli.add_command(click.Command(
        "resume", callback=resume, params=resume_params,
        help="Resume the latest (or --origin-run-id) run: clone its successful tasks upstream of the "
             "failed step (or STEP_TO_RERUN) and re-run the rest. Parameters come from the origin run."))

    @cli.command(help="Internal: run one task (used by the subprocess launcher and orchestrators).", hidden=True)
    @click.argument("step_name")
    @click.option("--task-spec", "spec_path", default=None, type=click.Path(exists=True))
    @click.option("--result-file", default=None)
    @click.option("--run-id", default=None, help="The run the task belongs to.")
    @click.option("--task-id", default=None, help="The task's id in its step.")
    @click.option("--input-paths", default=None, help="The input tasks, RUN/STEP/TASK separated by commas.")
    @click.option("--split-index", type=int, default=None, help="The task's index in its foreach.")
    @click.option("--retry-count", type=int, default=0, help="The attempt number (0 for the first try).")
    @click.option("--max-user-code-retries", type=int, default=0, help="Retries the step's user code gets.")
    @click.option("--tag", "tags", multiple=True, help="Tags of the run (repeatable).")
    @click.option("--namespace", "user_namespace", default=None, help="The client namespace inside the step.")
    @click.option("--output-dir", default=None, metavar="DIR",
                  help="Write task_id, num_splits, splits.json and next_step here for an orchestrator.")
    @click.option("--clone-run-id", default=None, metavar="RUN_ID",
                  help="The run this run resumes: the task clones that run's task of the same step and id "
                       "when it succeeded there and its inputs here are clones; empty: not a resume.")
    @click.pass_context
    def step(ctx: click.Context, step_name: str, spec_path: str | None, result_file: str | None,
             **task: Any) -> None:
        if spec_path is None:
            raise SystemExit(_orchestrated_step(ctx, flow_cls, step_name, **task))
        if result_file is None:
            raise click.UsageError("--task-spec needs --result-file.")
        from ..runtime.launchers.base import TaskContext, run_task
        from ..runtime.taskspec import TaskSpec

        with open(spec_path) as f:
            spec = TaskSpec.from_json(f.read())
        if spec.step_name != step_name:
            raise click.UsageError(f"--task-spec is for step {spec.step_name!r}, not {step_name!r}.")
        from ..runtime.launchers.base import StampedLines

        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout, sys.stderr = StampedLines(1), StampedLines(2)  # fds 1/2 are the task's log files
        from ..runtime.run_state import restore_run_state
        from ..store import Datastore

        guarded(lambda: restore_run_state(Datastore(spec.datastore_root), flow_cls, spec.run_id))
        tctx = TaskContext(flow_cls, flow_cls._graph, spec.datastore_root, sys.argv[0], decorators_attached=False)
        result = run_task(spec, tctx)
        tmp = result_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(result.to_json())
        os.replace(tmp, result_file)
        sys.stdout.flush()
        raise SystemExit(0 if result.ok else 1)

    @click.pass_context
    def init(ctx: click.Context, run_id: str, task_id: str, tags: tuple[str, ...], clone_run_id: str | None,
             **values: Any) -> None:
        _banner(ctx, flow_cls)
        settings = ctx.obj["settings"]

        def go() -> None:
            from ..exceptions import CommandException
            from ..flow.config import config_artifacts
            from ..flow.flow_decorators import init_flow_decorators
            from ..flow.mutators import prepare_flow
            from ..flow.parameters import flow_constants, resolve_parameters
            from ..runtime.run import RunRequest, init_run
            from ..store.taskmeta import PARAMETERS_TASK_ID

            if task_id != PARAMETERS_TASK_ID:
                raise CommandException(f"init --task-id {task_id}: the parameters task of a run has the id "
                                       f"{PARAMETERS_TASK_ID!r}.",
                                       hint=f"Pass --task-id {PARAMETERS_TASK_ID} (or leave it out), and "
                                            f"RUN/_parameters/{PARAMETERS_TASK_ID} as the start step's input.")
            prepare_flow(flow_cls, ctx.obj["decospecs"])
            graph = _lint_or_raise(flow_cls)
            init_flow_decorators(flow_cls, graph, ctx.obj["flow_options"])
            origin = None
            if clone_run_id:  # a resume: the origin's parameters, as a local resume takes them
                from ..runtime.resume import parameters_plan
                from ..store import Datastore

                origin = parameters_plan(Datastore(settings.datastore_root), flow_cls.__name__, clone_run_id,
                                         option="--clone-run-id")
                resolved: dict[str, Any] = {}
            else:
                given = {p.name: values.get(p.attr_name) for p in params}
                resolved = resolve_parameters(flow_cls, given, settings.require_user())
            req = RunRequest(flow_cls=flow_cls, graph=graph, script=os.path.abspath(sys.argv[0]), params=resolved,
                             constants={**flow_constants(flow_cls), **config_artifacts(flow_cls)},
                             tags=tuple(tags), decospecs=ctx.obj["decospecs"])
            init_run(req, settings, run_id, origin)

        guarded(go)

    from ..store.taskmeta import PARAMETERS_TASK_ID

    init_params: list[click.Parameter] = [
        click.Option(["--run-id"], required=True, help="The id of the run to create."),
        click.Option(["--task-id"], default=PARAMETERS_TASK_ID, show_default=True,
                     help="The id of the parameters task."),
        click.Option(["--tag", "tags"], multiple=True, help="Annotate the run with this tag (repeatable)."),
        click.Option(["--clone-run-id"], default=None, metavar="RUN_ID",
                     help="The run this run resumes: its parameters are copied and the parameter options "
                          "ignored, as `resume` does; empty: not a resume."),
    ] + [_click_option(p) for p in params]
    cli.add_command(click.Command(
        "init", callback=init, params=init_params, hidden=True,
        help="Internal: record a run and its parameters without running it (used by orchestrators)."))

    from .inspect_cmds import add_inspect_commands
    add_inspect_commands(cli, flow_cls)
    from .tag_cmds import add_tag_commands
    add_tag_commands(cli, flow_cls)
    from .card_cmds import add_card_commands
    add_card_commands(cli, flow_cls)
    from .package_cmds import add_package_commands
    add_package_commands(cli, flow_cls)
    from .kubernetes_cmds import add_kubernetes_commands
    add_kubernetes_commands(cli, flow_cls)
    from .argo_cmds import add_argo_commands
    add_argo_commands(cli, flow_cls)
    from .environment_cmds import add_environment_commands
    add_environment_commands(cli, flow_cls)
    return cli


def _orchestrated_step(ctx: click.Context, flow_cls: type, step_name: str, *, run_id: str | None,
                       task_id: str | None, input_paths: str | None, split_index: int | None, retry_count: int,
                       max_user_code_retries: int, tags: tuple[str, ...], user_namespace: str | None,
                       output_dir: str | None, clone_run_id: str | None) -> int:
    """``step`` with Metaflow's arguments (an orchestrator's task): 0 if the task succeeded."""
    missing = [flag for flag, v in (("--run-id", run_id), ("--task-id", task_id), ("--input-paths", input_paths))
               if not v]
    if missing:
        raise click.UsageError(f"step needs {', '.join(missing)} (or --task-spec and --result-file).")
    settings = ctx.obj["settings"]

    def go() -> int:
        from ..runtime.task_command import TaskArguments, run_task_command, write_outputs
        from ..store import Datastore

        args = TaskArguments(step=step_name, run_id=str(run_id), task_id=str(task_id), input_paths=str(input_paths),
                             split_index=split_index, retry_count=retry_count,
                             max_user_code_retries=max_user_code_retries, tags=tags, namespace=user_namespace,
                             decospecs=ctx.obj["decospecs"], clone_run_id=clone_run_id or None)
        result = run_task_command(args, flow_cls, Datastore(settings.datastore_root), settings, sys.argv[0])
        if output_dir and result.ok:
            write_outputs(output_dir, result, str(task_id))
        if not result.ok:
            click.echo(f"Step failure: Step {step_name} (task-id {task_id}) failed.", err=True)
        return 0 if result.ok else 1

    return guarded(go)


def _announce_project(flow_cls: type, quiet: bool) -> None:
    from ..flow.flow_decorators import flow_current_fields

    fields = flow_current_fields(flow_cls)
    if "branch_name" in fields and not quiet:  # as Metaflow's banner line
        click.echo(f"Project: {fields['project_name']}, Branch: {fields['branch_name']}", err=True)


def _resume_configs(flow_cls: type, ds: Any, origin: str) -> None:
    from ..flow.config import apply_configs, flow_configs

    if flow_configs(flow_cls):
        from ..runtime.prefork import before_fork
        from ..runtime.run_state import recorded_configs

        apply_configs(flow_cls, before_fork(ds, lambda: recorded_configs(ds, flow_cls, origin)))


def _console_factory() -> Any:
    from ..runtime.console import Console

    return lambda run_id: Console(run_id)


def main(flow_cls: type, argv: list[str]) -> None:
    """Entry point of ``MyFlow()``: parse ``argv`` and run the command."""
    cli = build_cli(flow_cls)
    try:
        cli.main(args=argv, prog_name=os.path.basename(sys.argv[0]) or "flow.py", standalone_mode=True)
    except HeadwaterException as e:  # raised outside a guarded block (e.g. while building options)
        from .errors import report

        raise SystemExit(report(e)) from None
