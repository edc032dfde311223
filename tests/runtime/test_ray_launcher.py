"""The Ray launcher on a real Ray cluster started by the test on loopback addresses.

One cluster for the session (``ray_cluster`` in tests/runtime/conftest.py): a head
with no CPUs (127.0.0.2, so every task lands on a worker node), node A (127.0.0.3,
2 CPUs) and node B (127.0.0.4, 3 CPUs). The node-loss test adds nodes C and D
(127.0.0.5-6) that alone hold its step's memory request, and kills one of them, so
A and B stay whole for whoever uses the cluster next. Flows run through the CLI
from the head; results are checked through the client.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from envdirs import built_envs
from flowrun import FLOWS, USER, run_flow

pytest.importorskip("ray", reason="the Ray launcher tests need the `ray` extra (pip install 'headwater[ray]')")

from raycluster import NODE_B, RayCluster  # noqa: E402

NODE_C, NODE_D = "127.0.0.5", "127.0.0.6"
#: Logical memory of nodes C and D: only they hold the node-loss step's @resources(memory=...).
BIG_MEMORY = 200 * 1024**3


@pytest.fixture
def cluster(ray_cluster: RayCluster) -> RayCluster:
    return ray_cluster


def cluster_s3_env(c: RayCluster) -> dict[str, str]:
    return {k: v for k, v in c.env.items() if k.startswith(("AWS_", "HEADWATER_S3_"))}


def cluster_s3_client(c: RayCluster):
    import boto3

    env = cluster_s3_env(c)
    return boto3.client("s3", endpoint_url=env["HEADWATER_S3_ENDPOINT_URL"], region_name=env["AWS_REGION"],
                        aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])


def node_ids(c: RayCluster) -> set[str]:
    return {n.node_id for n in c.nodes}


def node_id(c: RayCluster, ip: str) -> str:
    return next(n.node_id for n in c.nodes if n.ip == ip)


def ray_env(c: RayCluster, **extra: str) -> dict[str, str]:
    return {"HEADWATER_RAY_ADDRESS": c.address, "TMPDIR": str(c.temp_dir), **extra}


def latest(root: Path | str, flow: str):
    os.environ["HEADWATER_DATASTORE_ROOT"] = str(root)
    os.environ["HEADWATER_USER"] = USER
    from headwater import Flow, namespace

    namespace(None)
    return Flow(flow).latest_run


@pytest.mark.parametrize("how", ["launcher", "with"])
def test_foreach_runs_on_both_nodes(cluster: RayCluster, tmp_path: Path, how: str) -> None:
    args = ("run", "--sleep", "1") if how == "launcher" else ("run", "--sleep", "1", "--with", "ray_task")
    res = run_flow("ray_foreach_flow.py", *args, root=tmp_path / "store", launcher="ray" if how == "launcher" else "fork",
                   env=ray_env(cluster))
    assert res.returncode == 0, res.output
    run = latest(tmp_path / "store", "RayForeachFlow")
    assert run.successful
    join = run["join"].task.data
    assert join.squares == [0, 1, 4, 9, 16, 25]
    assert len(join.nodes) >= 2 and set(join.nodes) <= node_ids(cluster)  # the tasks ran on several nodes
    assert run["big"].task.data.big_node == node_id(cluster, NODE_B)  # only B holds @resources(cpu=3)
    # Logs reach the console (tailed from the store) and the store.
    assert "square of 3 on" in res.output
    assert "done 6" in res.output
    stdouts = [t.stdout for t in run["work"]]
    assert sum("square of" in s for s in stdouts) == 6


def test_foreach_on_the_s3_datastore(cluster: RayCluster, s3_bucket: str, tmp_path: Path) -> None:
    root = f"s3://{s3_bucket}/runs-on-ray"
    res = run_flow("ray_foreach_flow.py", "run", "--sleep", "1", root=tmp_path / "unused", launcher="ray",
                   env=ray_env(cluster, HEADWATER_DATASTORE_ROOT=root, **cluster_s3_env(cluster)))
    assert res.returncode == 0, res.output
    assert not (tmp_path / "unused").exists()  # nothing of the run lands on the head's disk
    run = latest(root, "RayForeachFlow")
    assert run.successful
    join = run["join"].task.data
    assert join.squares == [0, 1, 4, 9, 16, 25]
    assert len(join.nodes) >= 2 and set(join.nodes) <= node_ids(cluster)
    assert "square of 3 on" in res.output  # tailed from the S3 store
    assert all("square of" in t.stdout for t in run["work"])
    assert "done 6" in run["end"].task.stdout
    keys = [o["Key"] for o in cluster_s3_client(cluster).list_objects_v2(Bucket=s3_bucket)["Contents"]]
    assert any(k.endswith("/0.stdout") for k in keys) and not any(".chunks" in k for k in keys)


def test_ray_task_steps_import_the_code_package(cluster: RayCluster, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("ray_routing_flow.py", "ray_helper.py"):
        shutil.copy(FLOWS / name, src / name)
    res = run_flow(src / "ray_routing_flow.py", "run", root=tmp_path / "store", launcher="fork",
                   env=ray_env(cluster, RAY_TEST_DELETE_SOURCES="1"), cwd=tmp_path)
    assert res.returncode == 0, res.output
    assert not (src / "ray_routing_flow.py").exists()  # the start step deleted the head's copy...
    run = latest(tmp_path / "store", "RayRoutingFlow")
    remote = run["remote"].task.data
    assert remote.helper == "hello from ray"  # ...so the Ray step imported both files from the package
    assert remote.flow_file.startswith(str(cluster.temp_dir)) and "headwater-code" in remote.flow_file
    assert remote.node in node_ids(cluster)
    # start and end ran locally (fork pool children of this run), remote in a Ray worker.
    assert remote.worker_pid not in (run["start"].task.data.start_pid, run["end"].task.data.end_pid)
    # An instance of a class of the flow file went head -> Ray worker -> head.
    assert run["end"].task.data.moved_sum == 23


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Offline wheels of tinylib 1.0.0 and 2.0.0 (the nodes build environments from them)."""
    pytest.importorskip("uv", reason="environment steps need uv (pip install 'headwater[envs]')")
    from tinywheels import write_wheel

    links = tmp_path_factory.mktemp("links")
    write_wheel(links, "tinylib", "1.0.0")
    write_wheel(links, "tinylib", "2.0.0")
    return links


BUILT = re.compile(r"Built the pypi environment ([0-9a-f]{12}) \(.*?\) in (\S+) on node")


def test_environment_steps_run_in_their_environment_built_once_per_node(cluster: RayCluster, tmp_path: Path,
                                                                         wheels: Path, use_root) -> None:
    """PypiFlow (tinylib 1.* in start, 2.* in two, nothing in end) with every step on Ray, twice: each
    step sees its own version, end sees neither; each node builds an environment once, in its own
    HEADWATER_HOME, and the second run reuses what its node has. The package sources (offline
    find-links) reach the nodes from the head's settings only: the nodes have none."""
    root = tmp_path / "store"
    env = ray_env(cluster, HEADWATER_PYPI_NO_INDEX="1", HEADWATER_PYPI_FIND_LINKS=str(wheels),
                  HEADWATER_HOME=str(tmp_path / "head-home"), UV_HTTP_RETRIES="0")
    homes = [cluster.node_home(n.ip) / "envs" for n in cluster.nodes]
    before = {h: {p.name for p in h.iterdir()} if h.is_dir() else set() for h in homes}
    for _ in range(2):
        res = run_flow("pypi_flow.py", "--environment=pypi", "run", "--with", "ray_task", root=root, env=env,
                       timeout=240)
        assert res.returncode == 0, res.output
    use_root(root)
    from headwater import Flow

    runs = list(Flow("PypiFlow"))
    assert len(runs) == 2
    builds: list[tuple[str, str]] = []
    for run in runs:
        assert run.successful
        assert run["start"].task["tinylib"].data == "1.0.0" and run["two"].task["tinylib"].data == "2.0.0"
        assert run["end"].task["tinylib"].data is None
        assert run["start"].task["sees_pytest"].data is False and run["end"].task["sees_pytest"].data is True
        for name in ("start", "two"):
            task = run[name].task
            described = json.loads(task.metadata_dict["environment"])
            assert described["packages"] == {"tinylib": task["tinylib"].data}
            builds += BUILT.findall(task.stderr)
        assert "environment" not in run["end"].task.metadata_dict
    # Every environment on a node was built exactly once (never again by the second run).
    made = {(p.name[:12], str(h)) for h in homes for p in built_envs(h) if p.name not in before[h]}
    assert sorted(builds) == sorted(made)
    assert len({digest for digest, _ in made}) == 2  # the two locks, each built on the node(s) that ran it
    for home in homes:
        for env_dir in built_envs(home):
            assert (env_dir / "headwater-env.json").is_file()
    head_envs = tmp_path / "head-home" / "envs"  # the head resolves (its lock cache), and builds nothing
    assert built_envs(head_envs) == []


def test_environment_steps_on_the_s3_datastore(cluster: RayCluster, s3_bucket: str, tmp_path: Path,
                                               wheels: Path) -> None:
    """HEADWATER_LAUNCHER=ray with an S3 datastore: the lock object travels through S3, and what the
    step prints in its environment reaches the task's log in the store and the console."""
    root = f"s3://{s3_bucket}/envs-on-ray"
    res = run_flow("pypi_flow.py", "--environment=pypi", "run", root=tmp_path / "unused", launcher="ray",
                   env=ray_env(cluster, HEADWATER_DATASTORE_ROOT=root, HEADWATER_PYPI_NO_INDEX="1",
                               HEADWATER_PYPI_FIND_LINKS=str(wheels), HEADWATER_HOME=str(tmp_path / "head-home"),
                               UV_HTTP_RETRIES="0", **cluster_s3_env(cluster)), timeout=240)
    assert res.returncode == 0, res.output
    assert "tinylib 1.0.0" in res.output  # tailed from the store
    run = latest(root, "PypiFlow")
    assert run.successful
    assert [run[s].task["tinylib"].data for s in ("start", "two", "end")] == ["1.0.0", "2.0.0", None]
    assert "tinylib 1.0.0" in run["start"].task.stdout


def test_request_no_node_can_hold_fails_fast(cluster: RayCluster, tmp_path: Path) -> None:
    res = run_flow("ray_foreach_flow.py", "run", "--with", "resources:cpu=64", root=tmp_path / "store",
                   launcher="ray", env=ray_env(cluster), timeout=60)
    assert res.returncode != 0
    assert "Step 'start' asks for @resources(cpu=64) but no node of the Ray cluster can hold it" in res.output
    assert "3 CPUs" in res.output and "2 CPUs" in res.output  # the cluster's nodes, named


def test_retry_catch_and_timeout_behave_as_locally(cluster: RayCluster, tmp_path: Path) -> None:
    res = run_flow("ray_faults_flow.py", "run", root=tmp_path / "store", launcher="ray", env=ray_env(cluster))
    assert res.returncode == 0, res.output
    run = latest(tmp_path / "store", "RayFaultsFlow")
    join = run["join"].task.data
    assert join.flaky_attempt == 1  # @retry: the second attempt succeeded
    assert "always broken" in join.broken_err  # @catch after the retries ran out
    assert "Step stubborn timed out after 0 hours, 0 minutes, 2 seconds" in join.timeout_err
    # The task's own timer fired on the node (the deadline travelled as seconds left), then the kill.
    from headwater import Task

    stubborn = run["stubborn"].task
    assert "Step stubborn timed out" in Task(stubborn.pathspec, attempt=0).stdout
    assert "died" in join.kill_err  # the worker process killed itself: a crash @catch records
    broken = run["broken"].task
    assert "broken attempt 1" in broken.stdout
    assert "Ray worker or node running the task died" in res.output


def test_worker_without_datastore_names_node_and_root(tmp_path: Path) -> None:
    from headwater.runtime.remote import run_remote
    from headwater.runtime.taskspec import TaskSpec

    root = tmp_path / "nowhere"
    spec = TaskSpec(flow_name="F", run_id="1", step_name="start", task_id="1", attempt=0, input_paths=(),
                    input_attempts=(), datastore_root=str(root), user=USER)
    out = run_remote(spec.to_json(), None, "10.1.2.3 (Ray node abc)")
    assert out.result_json is None
    assert f"Node 10.1.2.3 (Ray node abc) cannot reach the datastore {root}" in (out.error or "")


def test_resources_map_to_ray_options() -> None:
    from headwater import FlowSpec, resources, step
    from headwater.runtime.launchers.ray import step_ray_options

    class F(FlowSpec):
        @resources(cpu=4, gpu=1, memory=2048)
        @step
        def start(self):
            self.next(self.mid)

        @resources(cpu=2)
        @step
        def mid(self):
            self.next(self.end)

        @step
        def end(self):
            pass

    assert step_ray_options(F, "start") == {"num_cpus": 4.0, "num_gpus": 1.0, "memory": 2048 * 1024 * 1024}
    assert step_ray_options(F, "mid") == {"num_cpus": 2.0}  # memory not given: no Ray memory request
    assert step_ray_options(F, "end") == {"num_cpus": 1.0}


def test_admission_refuses_what_no_live_node_holds() -> None:
    from headwater.exceptions import ResourcesError
    from headwater.runtime.launchers import Request
    from headwater.runtime.launchers.ray import RayAdmission

    class Cluster:
        def options(self, step):
            return {"train": {"num_cpus": 4.0, "num_gpus": 2.0}, "small": {"num_cpus": 1.0}}[step]

        def node_resources(self):
            return [{"CPU": 8.0, "memory": 2048 * 1024 * 1024}, {"CPU": 2.0, "GPU": 2.0}]

    adm = RayAdmission(Cluster())  # type: ignore[arg-type]
    adm.check("small", Request(cpu=1))
    assert adm.admit([("small/1", Request(cpu=1))]) == [()]  # Ray queues; nothing reserved here
    with pytest.raises(ResourcesError, match=r"Step 'train' asks for @resources\(cpu=4, gpu=2\) but no node of "
                                             r"the Ray cluster can hold it \(nodes: 8 CPUs, 0 GPUs, 2048 MB; "
                                             r"2 CPUs, 2 GPUs, 0 MB\)"):
        adm.check("train", Request(cpu=4, gpu=2))


def test_ray_task_steps_are_routed_to_ray() -> None:
    from headwater import FlowSpec, ray_task, step
    from headwater.flow.decorators import InvalidDecoratorAttribute
    from headwater.runtime.launchers import TaskContext, make_launcher
    from headwater.runtime.launchers.ray import RayLauncher
    from headwater.runtime.launchers.routing import RoutingLauncher

    class F(FlowSpec):
        @step
        def start(self):
            self.next(self.far)

        @ray_task(address="10.9.8.7:6379")
        @step
        def far(self):
            self.next(self.end)

        @step
        def end(self):
            pass

    launcher = make_launcher("fork", TaskContext(F, F._graph, "/nowhere", "f.py"))
    assert isinstance(launcher, RoutingLauncher) and launcher.remote
    assert isinstance(launcher.for_step("far"), RayLauncher) and launcher.for_step("far").address == "10.9.8.7:6379"
    assert launcher.for_step("start") is launcher.default and launcher.for_step("end") is launcher.default
    env_wins = make_launcher("fork", TaskContext(F, F._graph, "/nowhere", "f.py", ray_address="10.0.0.1:1"))
    assert env_wins.for_step("far").address == "10.0.0.1:1"  # type: ignore[attr-defined]

    class Bad(FlowSpec):
        @ray_task(address="")
        @step
        def start(self):
            self.next(self.end)

        @step
        def end(self):
            pass

    with pytest.raises(InvalidDecoratorAttribute, match=r"@ray_task\(address=''\): address must be a non-empty"):
        make_launcher("fork", TaskContext(Bad, Bad._graph, "/nowhere", "f.py"))


def test_missing_ray_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from headwater.runtime.launchers.ray import RayClusterError, import_ray

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(RayClusterError, match=r"needs the `ray` package"):
        import_ray()


def test_unreachable_cluster_fails_at_once(tmp_path: Path) -> None:
    from raycluster import free_port

    address = f"127.0.0.2:{free_port()}"  # nothing listens there
    res = run_flow("ray_foreach_flow.py", "run", root=tmp_path / "store", launcher="ray",
                   env={"HEADWATER_RAY_ADDRESS": address}, timeout=60)
    assert res.returncode != 0
    assert f"Cannot connect to the Ray cluster at '{address}'" in res.output
    assert "ray start --head" in res.output
    assert "Traceback" not in res.output


def test_a_killed_run_commits_nothing_more(cluster: RayCluster, tmp_path: Path) -> None:
    """Ray fate-shares a task with its driver: the run process killed, its running task dies uncommitted."""
    add_big_nodes(cluster)
    marker = tmp_path / "attempt0.json"
    root = tmp_path / "store"
    p = _start_node_loss_run(cluster, root, marker, hold=3)
    _wait_for(marker, p)
    os.kill(p.pid, 9)
    p.communicate()
    time.sleep(6)  # past the step's end, had it lived
    run_id = next(iter(os.listdir(root / "runs" / "RayNodeLossFlow")))
    task_dir = root / "runs" / "RayNodeLossFlow" / run_id / "fragile"
    records = list(task_dir.glob("*/*.json")) if task_dir.exists() else []
    assert records == []


def add_big_nodes(cluster: RayCluster) -> None:
    """Nodes C and D, the only ones that hold the node-loss flow's step (started once)."""
    for ip in (NODE_C, NODE_D):
        if ip not in {n.ip for n in cluster.nodes}:
            cluster.add_node(ip, 1, memory=BIG_MEMORY)


def _start_node_loss_run(cluster: RayCluster, root: Path, marker: Path, hold: float = 120) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    env.update({"HEADWATER_DATASTORE_ROOT": str(root), "HEADWATER_USER": USER,
                "HEADWATER_LAUNCHER": "ray", "PYTHONUNBUFFERED": "1", **ray_env(cluster)})
    return subprocess.Popen([sys.executable, str(FLOWS / "ray_node_loss_flow.py"), "run", "--marker", str(marker),
                             "--hold", str(hold)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, cwd=root.parent)


def _wait_for(marker: Path, p: subprocess.Popen) -> None:
    end = time.monotonic() + 60
    while not marker.exists() and time.monotonic() < end and p.poll() is None:
        time.sleep(0.1)
    if not marker.exists():
        p.kill()
        pytest.fail(f"attempt 0 never started:\n{p.communicate()[0]}")


def test_node_killed_during_task_retries_on_another_node(cluster: RayCluster, tmp_path: Path) -> None:
    add_big_nodes(cluster)
    marker = tmp_path / "attempt0.json"
    p = _start_node_loss_run(cluster, tmp_path / "store", marker)
    try:
        _wait_for(marker, p)
        doomed = json.loads(marker.read_text())
        assert doomed["ip"] in (NODE_C, NODE_D)  # only they hold @resources(memory=150000)
        cluster.kill_node(doomed["ip"])
        out, _ = p.communicate(timeout=90)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, out
    run = latest(tmp_path / "store", "RayNodeLossFlow")
    task = run["fragile"].task
    assert task.data.attempt == 1
    assert task.data.node != doomed["node"]  # the retry ran on the node that survived
    assert "died" in out


def test_environment_locks_are_pinned_as_the_runs(tmp_path: Path) -> None:
    """The lock a Ray task's environment is built from is stored through a store pinned as the
    run's (kept until the run has ended), not an anonymous one (kept a day), like Kubernetes'."""
    from types import SimpleNamespace

    from headwater.runtime.launchers.ray import RayLauncher
    from headwater.runtime.taskspec import TaskSpec
    from headwater.store import Datastore

    owners: list[str | None] = []

    class Envs:
        def for_step(self, step: str, content) -> None:
            owners.append(content.owner)

    launcher = RayLauncher.__new__(RayLauncher)
    launcher.ctx = SimpleNamespace(environments=SimpleNamespace(steps={"train"}))
    launcher._envs, launcher._content = Envs(), Datastore(str(tmp_path / "store")).content
    spec = TaskSpec("F", "17", "train", "2", 0, (), (), str(tmp_path / "store"), USER)
    launcher._environment(spec)
    assert owners == ["runs/F/17"] and launcher._content.owner is None
