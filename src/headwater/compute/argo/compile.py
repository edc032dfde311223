"""The pure compiler from a flow's graph and decorators to an Argo WorkflowTemplate (and a
CronWorkflow for ``@schedule``), as plain dicts (internal).

Structure (as Metaflow's): a top-level DAG template ``main``; one container template per
step; each foreach body is a DAG template of its own, instantiated once per split with
``withParam`` over the split task's ``splits`` output. Task ids are deterministic: every
task of one foreach scope has the id ``t`` followed by its split indices (``t``,
``t-2``, ``t-2-0``), so a join finds its inputs from the split count alone. A switch runs
its cases as tasks with ``when`` on the switch task's ``next-step`` output. Every task gets
``--clone-run-id`` from the workflow parameter ``origin-run-id`` (empty unless the workflow
resumes a run; see ``submit.py``). See docs/argo.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ...exceptions import HeadwaterException
from ...flow.kubernetes import KubernetesOptions
from ...flow.nodekind import NodeKind
from ...plan import FIRST_TASK_ID, SPLIT_SEP
from ...store.taskmeta import PARAMETERS_STEP, PARAMETERS_TASK_ID
from ..commands import bootstrap_command, datastore_args
from ..kubernetes.pod import container_fields, pod_fields, step_env
from . import naming as nm

if TYPE_CHECKING:
    from ...environments.remote import RemoteEnvironment

API_VERSION = "argoproj.io/v1alpha1"
#: Where a task writes the files the contract's ``--output-dir`` names (read back as outputs).
OUTPUT_DIR = "/tmp/hw-out"
#: The run id every task of a Workflow gets (Argo substitutes the Workflow's name).
RUN_ID = nm.run_id("{{workflow.name}}")
INIT_TASK_ID = PARAMETERS_TASK_ID  # the one parameters task a run has (`init` writes it)
_SCOPE_INPUT = "split-path"


class ArgoCompileError(HeadwaterException):
    """A flow shape or option this compiler cannot express in Argo Workflows."""

    headline = "Cannot compile the flow for Argo Workflows"


@dataclass(frozen=True)
class CompileOptions:
    """What ``argo-workflows create`` decides beyond the flow itself."""

    name: str
    image: str
    datastore_root: str
    package_key: str
    flow_file: str
    namespace: str = "default"
    max_workers: int = 100
    workflow_timeout: int | None = None
    workflow_priority: int | None = None
    tags: tuple[str, ...] = ()
    user_namespace: str | None = None
    #: Top-level options of flow decorators given to `create` (``--branch B``, ``--production``), which
    #: every task must see too (``@project`` names its branch from them).
    flow_args: tuple[str, ...] = ()
    #: HEADWATER_KUBERNETES_SECRETS and _SERVICE_ACCOUNT: every pod of the workflow gets them (a
    #: ``@kubernetes`` step through its own pod options), so each can reach the datastore.
    secrets: tuple[str, ...] = ()
    service_account: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StepSettings:
    """What one step's decorators mean to the compiler."""

    retries: int = 0
    minutes_between_retries: float = 0.0
    timeout: int | None = None
    cpu: float | None = None
    memory_mb: float | None = None
    gpu: int = 0
    env: dict[str, str] = field(default_factory=dict)
    pod: KubernetesPod | None = None  # the step has @kubernetes (or --with kubernetes)
    #: The step's stored environment lock (``@pypi``, ``@conda``): its pod builds it, then runs in it.
    environment: RemoteEnvironment | None = None


@dataclass(frozen=True)
class KubernetesPod:
    """A ``@kubernetes`` step's validated options and the configured defaults they fall back on."""

    options: KubernetesOptions
    secrets: tuple[str, ...] = ()  # HEADWATER_KUBERNETES_SECRETS
    service_account: str | None = None  # HEADWATER_KUBERNETES_SERVICE_ACCOUNT


@dataclass(frozen=True)
class FlowParameter:
    """A flow parameter as a workflow argument: its name and default (JSON text)."""

    name: str
    default: str
    description: str = ""


def _scope(graph: Any, node: Any) -> str | None:
    """The innermost foreach whose body ``node`` is in (None: the top level)."""
    parents = node.split_parents[:-1] if node.kind is NodeKind.JOIN else node.split_parents
    for split in reversed(parents):
        if graph[split].kind is NodeKind.FOREACH:
            return split
    return None


class _Compiler:
    def __init__(self, graph: Any, steps: dict[str, StepSettings], params: list[FlowParameter],
                 opts: CompileOptions):
        self.graph = graph
        self.steps = steps
        self.params = params
        self.opts = opts
        self.scope = {n.name: _scope(graph, n) for n in graph}
        for n in graph:
            if n.kind is NodeKind.PARALLEL:
                raise ArgoCompileError(f"Step {n.name!r} uses num_parallel, which the Argo compiler does "
                                       "not support yet.", hint="Use a foreach, or run the flow with `run`.")
        order = {n: i for i, n in enumerate(graph.sorted_nodes)}
        for n in graph:
            back = [p for p in n.in_funcs if order[p] >= order[n.name]]
            if back:
                raise ArgoCompileError(f"Step {back[0]!r} goes back to step {n.name!r} (a recursive switch), "
                                       "which the Argo compiler does not support yet.",
                                       hint="Replace the loop with a foreach, or run the flow with `run`.")
        clash = [p.name for p in params if nm.parameter_name(p.name) == nm.ORIGIN_RUN_PARAMETER]
        if clash:
            raise ArgoCompileError(f"Parameter {clash[0]!r} clashes with the workflow parameter "
                                   f"{nm.ORIGIN_RUN_PARAMETER!r} that resumes a run.", hint="Rename the parameter.")
        if any(nm.task_name(name) == nm.INIT_TASK for name in graph.sorted_nodes):
            raise ArgoCompileError(f"A step named {nm.INIT_TASK.replace('-', '_')!r} clashes with the "
                                   "parameters task.", hint="Rename the step.")

    # ---- ids and paths ------------------------------------------------------------
    def task_id(self, scope: str | None) -> str:
        # headwater.plan's ids: the first task's id, then "-<split index>" per foreach level.
        return FIRST_TASK_ID if scope is None else FIRST_TASK_ID + "{{inputs.parameters." + _SCOPE_INPUT + "}}"

    def path(self, step: str, scope: str | None) -> str:
        return f"{RUN_ID}/{step}/{self.task_id(scope)}"

    def dag_task_for(self, step: str, scope: str | None) -> str:
        """The DAG task in ``scope`` that stands for ``step`` (a fan-out task when it is deeper)."""
        s, cur = self.scope[step], step
        while s != scope:
            cur, s = s, self.scope[s]  # cur: the foreach split whose fan-out contains step
        return nm.task_name(self.graph[cur].out_funcs[0]) if cur != step else nm.task_name(step)

    # ---- DAG tasks ----------------------------------------------------------------
    def dag_task(self, node: Any, scope: str | None) -> dict[str, Any]:
        g = self.graph
        args: dict[str, str] = {"task-id": self.task_id(scope)}
        task: dict[str, Any] = {"name": nm.task_name(node.name), "template": nm.step_template(node.name)}
        deps: list[str] = []
        if node.is_start:
            deps = [nm.INIT_TASK]
            args["input-paths"] = f"{RUN_ID}/{PARAMETERS_STEP}/{INIT_TASK_ID}"
        elif node.kind is NodeKind.JOIN and g[node.split_parents[-1]].kind is NodeKind.FOREACH:
            split = node.split_parents[-1]
            deps = [self.dag_task_for(p, scope) for p in node.in_funcs]
            (last,) = node.in_funcs
            first = f"'{FIRST_TASK_ID}'"
            prefix = first if scope is None else first + " + inputs.parameters['" + _SCOPE_INPUT + "']"
            args["input-paths"] = (
                "{{=sprig.join(',', map(sprig.until(asInt(tasks['" + nm.task_name(split)
                + "'].outputs.parameters['num-splits'])), {'" + RUN_ID.replace("{{workflow.name}}", "' + workflow.name + '")
                + "/" + last + "/' + " + prefix + f" + '{SPLIT_SEP}' + string(#)}}))}}}}")
        else:
            deps = [self.dag_task_for(p, scope) for p in node.in_funcs]
            switched = [p for p in node.in_funcs if g[p].kind is NodeKind.SWITCH]
            cond = [p for p in node.in_funcs if self._is_switch_case(p)]
            if switched:
                (sw,) = switched
                task["when"] = "'{{tasks." + nm.task_name(sw) + ".outputs.parameters.next-step}}' == '" + node.name + "'"
                args["input-paths"] = self.path(sw, scope)
            elif cond and len(node.in_funcs) > 1:
                sw = self._switch_of(cond[0])
                if any(self._switch_of(p) != sw for p in node.in_funcs):
                    raise ArgoCompileError(f"Step {node.name!r} joins switch cases of different switches.",
                                           hint="Merge the cases of one switch at a time.")
                task["depends"] = " || ".join(f"{nm.task_name(p)}.Succeeded" for p in node.in_funcs)
                deps = []
                args["input-paths"] = (f"{RUN_ID}/{{{{tasks.{nm.task_name(sw)}.outputs.parameters.next-step}}}}/"
                                       f"{self.task_id(scope)}")
            else:
                args["input-paths"] = ",".join(self.path(p, scope) for p in node.in_funcs)
        if deps:
            task["dependencies"] = sorted(set(deps))
        task["arguments"] = {"parameters": [{"name": k, "value": v} for k, v in args.items()]}
        return task

    def _is_switch_case(self, step: str) -> bool:
        return any(self.graph[p].kind is NodeKind.SWITCH for p in self.graph[step].in_funcs)

    def _switch_of(self, step: str) -> str:
        (sw,) = [p for p in self.graph[step].in_funcs if self.graph[p].kind is NodeKind.SWITCH]
        if len(self.graph[step].out_funcs) != 1:
            raise ArgoCompileError(f"Switch case {step!r} must lead straight to the step that merges the cases.",
                                   hint="Keep each switch case to one step (the Argo compiler's limit for now).")
        return sw

    def fanout_task(self, split: Any, scope: str | None) -> dict[str, Any]:
        body = split.out_funcs[0]
        here = "" if scope is None else "{{inputs.parameters." + _SCOPE_INPUT + "}}"
        return {
            "name": nm.task_name(body),
            "template": nm.foreach_template(split.name),
            "dependencies": [nm.task_name(split.name)],
            "withParam": "{{tasks." + nm.task_name(split.name) + ".outputs.parameters.splits}}",
            "arguments": {"parameters": [
                {"name": _SCOPE_INPUT, "value": here + SPLIT_SEP + "{{item}}"},
                {"name": "input-paths", "value": self.path(split.name, scope)},
                {"name": "split-index", "value": "{{item}}"},
            ]},
        }

    def dag_template(self, scope: str | None) -> dict[str, Any]:
        tasks: list[dict[str, Any]] = []
        if scope is None:
            tasks.append({"name": nm.INIT_TASK, "template": nm.INIT_TEMPLATE})
        for node in self.graph:
            if self.scope[node.name] != scope:
                continue
            if scope is not None and node.name == self.graph[scope].out_funcs[0]:
                task = {"name": nm.task_name(node.name), "template": nm.step_template(node.name),
                        "arguments": {"parameters": [
                            {"name": "task-id", "value": self.task_id(scope)},
                            {"name": "input-paths", "value": "{{inputs.parameters.input-paths}}"},
                            {"name": "split-index", "value": "{{inputs.parameters.split-index}}"}]}}
            else:
                task = self.dag_task(node, scope)
            tasks.append(task)
            if node.kind is NodeKind.FOREACH:
                tasks.append(self.fanout_task(node, scope))
        template: dict[str, Any] = {"name": nm.ENTRYPOINT if scope is None else nm.foreach_template(scope),
                                    "dag": {"tasks": tasks}}
        if scope is not None:
            template["inputs"] = {"parameters": [{"name": n} for n in (_SCOPE_INPUT, "input-paths", "split-index")]}
        return template

    # ---- container templates ------------------------------------------------------
    def _bootstrap(self, args: list[str], environment: RemoteEnvironment | None = None) -> list[str]:
        o = self.opts
        lock = environment.lock_key if environment is not None else None
        return bootstrap_command(o.datastore_root, o.package_key, o.flow_file, args, environment_lock=lock)

    def _top_args(self) -> list[str]:
        # The flow's CLI arguments (the bootstrap runs the flow file from the package).
        return datastore_args(self.opts.datastore_root) + list(self.opts.flow_args)

    def _clone_args(self) -> list[str]:
        return ["--clone-run-id", "{{workflow.parameters." + nm.ORIGIN_RUN_PARAMETER + "}}"]

    def _tag_args(self) -> list[str]:
        out: list[str] = []
        for t in self.opts.tags:
            out += ["--tag", t]
        return out

    def _env(self, extra: dict[str, str]) -> list[dict[str, str]]:
        env = {"HEADWATER_DATASTORE_ROOT": self.opts.datastore_root, **self.opts.env, **extra}
        return [{"name": k, "value": v} for k, v in sorted(env.items())]

    def container_template(self, node: Any) -> dict[str, Any]:
        s = self.steps[node.name]
        inputs = ["task-id", "input-paths"]
        scope = self.scope[node.name]
        is_split_child = scope is not None and node.name == self.graph[scope].out_funcs[0]
        args = self._top_args() + ["step", node.name, "--run-id", RUN_ID,
                                   "--task-id", "{{inputs.parameters.task-id}}",
                                   "--input-paths", "{{inputs.parameters.input-paths}}"]
        if is_split_child:
            inputs.append("split-index")
            args += ["--split-index", "{{inputs.parameters.split-index}}"]
        # Argo defines {{retries}} only in a template with a retryStrategy.
        retry_count = "{{retries}}" if s.retries else "0"
        args += ["--retry-count", retry_count, "--max-user-code-retries", str(s.retries)] + self._tag_args()
        args += self._clone_args()
        if self.opts.user_namespace is not None:
            args += ["--namespace", self.opts.user_namespace]
        outputs: list[dict[str, Any]] = []
        if node.kind is NodeKind.FOREACH:
            outputs = [{"name": "splits", "valueFrom": {"path": f"{OUTPUT_DIR}/splits.json"}},
                       {"name": "num-splits", "valueFrom": {"path": f"{OUTPUT_DIR}/num_splits"}}]
        elif node.kind is NodeKind.SWITCH:
            outputs = [{"name": "next-step", "valueFrom": {"path": f"{OUTPUT_DIR}/next_step"}}]
        if outputs:
            args += ["--output-dir", OUTPUT_DIR]
        argv = self._bootstrap(args, s.environment)
        sources = s.environment.index if s.environment is not None else {}  # the lock's package sources
        container: dict[str, Any] = {"image": self.opts.image, "command": argv[:1], "args": argv[1:],
                                     "env": self._env({**sources, **s.env}), **self._secrets()}
        resources = _resources(s)
        if resources:
            container["resources"] = resources
        template: dict[str, Any] = {"name": nm.step_template(node.name),
                                    "inputs": {"parameters": [{"name": n} for n in inputs]},
                                    "container": container}
        if outputs:
            template["outputs"] = {"parameters": outputs}
        if s.retries:
            strategy: dict[str, Any] = {"limit": str(s.retries), "retryPolicy": "Always"}
            if s.minutes_between_retries:
                strategy["backoff"] = {"duration": f"{_minutes(s.minutes_between_retries)}m"}
            template["retryStrategy"] = strategy
        if s.timeout:
            template["activeDeadlineSeconds"] = s.timeout
        if s.pod is not None:
            self._apply_pod(node.name, template, s)
        return template

    def _apply_pod(self, step: str, template: dict[str, Any], s: StepSettings) -> None:
        """``@kubernetes`` on the step's template: the pod pieces the Kubernetes Job uses too."""
        assert s.pod is not None
        k = s.pod.options
        if k.namespace and k.namespace != self.opts.namespace:
            raise ArgoCompileError(f"Step {step!r} asks for the Kubernetes namespace {k.namespace!r}, but the "
                                   f"workflow runs in {self.opts.namespace!r}; Argo runs every pod of a workflow "
                                   "in its namespace.", hint="Drop @kubernetes(namespace=...), or set "
                                   "HEADWATER_KUBERNETES_NAMESPACE to deploy the workflow there.")
        container = template["container"]
        container.pop("resources", None)  # @kubernetes already merged @resources by max
        container.update(image=k.image or self.opts.image, env=self._env({**s.env, **step_env(k)}),
                         **container_fields(k, secrets=s.pod.secrets))
        pod = pod_fields(k, service_account=s.pod.service_account)
        pull = pod.pop("imagePullSecrets", None)
        template.update(pod)
        if pull:  # a template has no imagePullSecrets field; Metaflow patches the pod spec the same way
            template["podSpecPatch"] = json.dumps({"imagePullSecrets": pull})
        if k.labels or k.annotations:
            template["metadata"] = {key: dict(v) for key, v in (("labels", k.labels), ("annotations", k.annotations))
                                    if v}

    def init_template(self) -> dict[str, Any]:
        args = (self._top_args() + ["init", "--run-id", RUN_ID, "--task-id", INIT_TASK_ID] + self._tag_args()
                + self._clone_args())
        for p in self.params:
            if p.default:  # an empty default (None, or computed when the run starts) is left to init
                args += [f"--{p.name}", "{{workflow.parameters." + nm.parameter_name(p.name) + "}}"]
        full = self._bootstrap(args)
        return {"name": nm.INIT_TEMPLATE, "container": {"image": self.opts.image, "command": full[:1],
                                                        "args": full[1:], "env": self._env({}), **self._secrets()}}

    def _secrets(self) -> dict[str, Any]:
        """The configured secrets as the container's environment (a ``@kubernetes`` step's pod
        options replace them with its own, which include these)."""
        return {"envFrom": [{"secretRef": {"name": s}} for s in self.opts.secrets]} if self.opts.secrets else {}

    # ---- the whole object ---------------------------------------------------------
    def workflow_template(self) -> dict[str, Any]:
        o = self.opts
        foreach_scopes = [n.name for n in self.graph if n.kind is NodeKind.FOREACH]
        templates = [self.dag_template(None)] + [self.dag_template(s) for s in foreach_scopes]
        templates.append(self.init_template())
        templates += [self.container_template(n) for n in self.graph]
        labels = {"app.kubernetes.io/name": "headwater-flow", **o.labels}
        annotations = {nm.FLOW_ANNOTATION: self.graph.name}
        if o.tags:
            annotations[nm.TAGS_ANNOTATION] = json.dumps(list(o.tags))
        if self.params:
            annotations[nm.PARAMETERS_ANNOTATION] = json.dumps({p.name: p.default for p in self.params})
        spec: dict[str, Any] = {"entrypoint": nm.ENTRYPOINT, "parallelism": o.max_workers, "templates": templates,
                                "workflowMetadata": {"annotations": {nm.RUN_ID_ANNOTATION: RUN_ID}}}
        spec["arguments"] = {"parameters": [
            {"name": nm.parameter_name(p.name), "value": p.default,
             **({"description": p.description} if p.description else {})} for p in self.params] + [
            {"name": nm.ORIGIN_RUN_PARAMETER, "value": "",
             "description": "The run to resume (set by `argo-workflows resume`); empty: a new run."}]}
        if o.workflow_timeout is not None:
            spec["activeDeadlineSeconds"] = o.workflow_timeout
        if o.workflow_priority is not None:
            spec["priority"] = o.workflow_priority
        if o.service_account:
            spec["serviceAccountName"] = o.service_account  # every pod's, unless a @kubernetes step names one
        return {"apiVersion": API_VERSION, "kind": "WorkflowTemplate",
                "metadata": {"name": o.name, "namespace": o.namespace, "labels": labels, "annotations": annotations},
                "spec": spec}


def _minutes(m: float) -> int | float:
    return int(m) if float(m).is_integer() else m


def _resources(s: StepSettings) -> dict[str, Any]:
    req: dict[str, str] = {}
    if s.cpu is not None:
        req["cpu"] = str(_minutes(s.cpu))
    if s.memory_mb is not None:
        req["memory"] = f"{int(s.memory_mb)}M"
    if not req and not s.gpu:
        return {}
    out: dict[str, Any] = {"requests": req}
    if s.gpu:
        out["limits"] = {"nvidia.com/gpu": str(s.gpu)}
    return out


def compile_workflow_template(graph: Any, steps: dict[str, StepSettings], params: list[FlowParameter],
                              opts: CompileOptions) -> dict[str, Any]:
    """The WorkflowTemplate (a dict ready for ``json.dumps``) that runs the flow of ``graph``.

    Parameters
    ----------
    graph : FlowGraph
        The flow's validated graph.
    steps : dict
        Each step's ``StepSettings`` (from its decorators; see ``step_settings``).
    params : list of FlowParameter
        The flow's parameters, passed as workflow arguments to the ``init`` task.
    opts : CompileOptions
        Names, image, datastore and the ``create`` options.
    """
    return _Compiler(graph, steps, params, opts).workflow_template()


#: What a production deployment's tasks are given: they run as ``production:<token>`` (``Settings.identity``).
PRODUCTION_TOKEN_ENV = "HEADWATER_PRODUCTION_TOKEN"


def with_production_token(template: dict[str, Any], token: str) -> dict[str, Any]:
    """``template`` with ``token`` in every container's environment, so the deployment's runs and
    tasks are in the namespace ``production:<token>`` (as Metaflow's are)."""
    for t in template["spec"]["templates"]:
        container = t.get("container")
        if container is not None:
            env = [e for e in container.get("env", []) if e["name"] != PRODUCTION_TOKEN_ENV]
            container["env"] = sorted(env + [{"name": PRODUCTION_TOKEN_ENV, "value": token}],
                                      key=lambda e: e["name"])
    return template


def compile_cron_workflow(template_name: str, namespace: str, schedule: str,
                          timezone: str | None = None) -> dict[str, Any]:
    """The CronWorkflow that starts the WorkflowTemplate ``template_name`` on ``schedule`` (cron)."""
    # ``schedules`` (a list) replaced ``schedule`` in Argo 3.6; the 4.x schema no longer has the old field.
    spec: dict[str, Any] = {"schedules": [schedule],
                            "workflowSpec": {"workflowTemplateRef": {"name": template_name}}}
    if timezone:
        spec["timezone"] = timezone
    return {"apiVersion": API_VERSION, "kind": "CronWorkflow",
            "metadata": {"name": template_name, "namespace": namespace}, "spec": spec}
