"""Admission contract every launcher keeps (runtime.launchers.admission), and the scheduler only asking.

Each launcher is built as ``make_launcher`` builds it (never started: admission needs no
task process). A bounded admission (the local machine) refuses a request too large up
front, never admits past its capacity, admits gangs all or nothing and frees room on
release; an unbounded one (a plugin launcher whose own scheduler places tasks) admits all.
"""

from __future__ import annotations

import json

import pytest

from headwater.exceptions import ResourcesError
from headwater.flow.decorators import StepPolicy
from headwater.runtime.launchers import Launcher, LocalMachine, Machine, Request, TaskContext, make_launcher
from headwater.runtime.launchers import admission as admission_mod

from .instant import InstantLauncher, instant_scheduler

MACHINE = Machine(cpus=4, gpus=2)


class PluginLauncher(InstantLauncher):
    """A launcher that keeps the base admission, as a Ray or Kubernetes plugin would."""


def _launcher(name: str) -> Launcher:
    ctx = TaskContext(object, None, "/nonexistent", "flow.py",
                      machine=json.dumps({"cpus": MACHINE.cpus, "gpus": MACHINE.gpus}))
    if name == "plugin":
        return PluginLauncher(ctx, num_splits=0)
    return make_launcher(name, ctx)


BOUNDED = ["fork", "subprocess"]
ALL = [*BOUNDED, "plugin", "kubernetes"]


@pytest.fixture
def build(tmp_path, monkeypatch):
    """``build(name)``: the launcher ``_launcher`` gives; Kubernetes' against the fake API server
    (tests/fakekube.py) with an S3 root, as a run would configure it (it is never started)."""
    servers = []

    def make(name: str) -> Launcher:
        if name != "kubernetes":
            return _launcher(name)
        kube_config = pytest.importorskip("kubernetes.config.kube_config")
        from fakekube import FakeKube
        from headwater.flow.spec import FlowSpec
        from headwater.flow.step import step

        class KubeContractFlow(FlowSpec):
            @step
            def start(self):
                self.next(self.end)

            @step
            def end(self):
                pass

        server = FakeKube()
        servers.append(server)
        # The client reads KUBECONFIG when it is imported; this process imported it already.
        monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(server.write_kubeconfig(
            tmp_path / "kubeconfig")))
        ctx = TaskContext(KubeContractFlow, KubeContractFlow._graph, "s3://bucket/prefix", "flow.py")
        return make_launcher("kubernetes", ctx)

    yield make
    for server in servers:
        server.stop()


def _gpus(env) -> list[int]:
    visible = dict(env).get("CUDA_VISIBLE_DEVICES", "")
    return [int(g) for g in visible.split(",") if g]


@pytest.mark.parametrize("name", BOUNDED)
def test_a_request_too_large_is_refused_before_it_is_admitted(name):
    adm = _launcher(name).admission
    with pytest.raises(ResourcesError, match=r"Step 'train' asks for @resources\(cpu=1, gpu=3\) but this machine "
                                             r"has 4 CPUs and 2 GPUs"):
        adm.check("train", Request(cpu=1, gpu=3))
    with pytest.raises(ResourcesError, match=r"The @parallel step 'train' starts 3 tasks together"):
        adm.check("train", Request(cpu=2), count=3)
    adm.check("train", Request(cpu=2), count=2)  # fits exactly: no error


@pytest.mark.parametrize("name", BOUNDED)
def test_admitted_tasks_never_exceed_the_capacity(name):
    adm = _launcher(name).admission
    admitted, gpus = 0, []
    for i in range(10):
        envs = adm.admit([(f"t{i}", Request(cpu=1, gpu=1))])
        if envs is None:
            continue
        admitted += 1
        gpus += _gpus(envs[0])
    assert admitted == 2  # two GPUs, one each
    assert sorted(gpus) == [0, 1]  # one CUDA_VISIBLE_DEVICES per GPU task, never shared
    assert adm.admit([("cpu-only", Request(cpu=1))]) == [(("CUDA_VISIBLE_DEVICES", ""),)]
    assert adm.admit([("one-more", Request(cpu=1))]) == [(("CUDA_VISIBLE_DEVICES", ""),)]
    assert adm.admit([("past-cpus", Request(cpu=0.5))]) is None  # 4 of 4 CPUs held


@pytest.mark.parametrize("name", BOUNDED)
def test_release_frees_the_room(name):
    adm = _launcher(name).admission
    first = adm.admit([("a", Request(cpu=3, gpu=2))])
    assert first is not None and _gpus(first[0]) == [0, 1]
    assert adm.admit([("b", Request(cpu=2, gpu=1))]) is None
    adm.release("a")
    adm.release("never-admitted")  # ignored
    again = adm.admit([("b", Request(cpu=2, gpu=1))])
    assert again is not None and _gpus(again[0]) == [0]


@pytest.mark.parametrize("name", BOUNDED)
def test_a_gang_is_admitted_all_or_nothing(name):
    adm = _launcher(name).admission
    assert adm.admit([("solo", Request(cpu=1, gpu=1))]) is not None
    gang = [(f"g{i}", Request(cpu=1, gpu=1)) for i in range(2)]
    assert adm.admit(gang) is None  # one GPU free, two asked: none of the gang holds anything
    assert adm.admit([("other", Request(cpu=3))]) is not None  # so all 3 other CPUs are still free
    adm.release("solo")
    adm.release("other")
    envs = adm.admit(gang)
    assert envs is not None and sorted(g for env in envs for g in _gpus(env)) == [0, 1]


@pytest.mark.parametrize("name", ["plugin", "kubernetes"])
def test_an_unbounded_launcher_admits_everything_and_sets_nothing(name, build):
    adm = build(name).admission
    adm.check("train", Request(cpu=10_000, gpu=64), count=8)  # its own scheduler decides
    assert adm.admit([(f"t{i}", Request(cpu=64, gpu=8)) for i in range(100)]) == [()] * 100


@pytest.mark.parametrize("name", ALL)
def test_every_launcher_admits_a_fitting_request_when_idle(name, build):
    adm = build(name).admission
    adm.check("train", Request(cpu=1, gpu=1))
    envs = adm.admit([("t", Request(cpu=1, gpu=1))])
    assert envs is not None and len(envs) == 1
    adm.release("t")
    assert adm.admit([("t", Request(cpu=1, gpu=1))]) is not None


def test_gpus_are_looked_for_only_when_a_step_asks_for_one(monkeypatch):
    looked = []
    monkeypatch.setattr(admission_mod, "detect_gpus", lambda: looked.append(1) or 3)
    cpu_only = LocalMachine()
    cpu_only.expect([Request(cpu=1)])
    assert looked == [] and cpu_only.machine.gpus == 0
    gpu = LocalMachine()
    gpu.expect([Request(cpu=1), Request(cpu=1, gpu=1)])
    assert looked == [1] and gpu.machine.gpus == 3


def test_detect_gpus_counts_cuda_visible_devices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0, 2,5")
    assert admission_mod.detect_gpus() == 3


def test_a_bad_machine_description_is_refused():
    with pytest.raises(Exception, match=r"HEADWATER_MACHINE='\{cpus: 4\}' is not a machine description"):
        LocalMachine.from_description("{cpus: 4}")


# ---- the scheduler only asks ------------------------------------------------------------

def test_a_gpu_step_runs_where_the_launcher_places_it(tmp_path):
    # A CPU-only head node of a GPU cluster: the launcher's admission, not this machine, decides.
    sched = instant_scheduler(tmp_path / "store", 6, max_workers=4,
                              policies={"body": StepPolicy(cpu=8, gpu=1)})
    try:
        outcome = sched.run()
    finally:
        sched.index.close()
    assert outcome.ok and outcome.num_tasks == 9


def test_the_scheduler_fails_a_step_its_launcher_refuses(tmp_path):
    class Refusing(admission_mod.Admission):
        asked: list[str] = []

        def check(self, step, request, count=1):
            Refusing.asked.append(step)
            raise ResourcesError(f"Step {step!r} does not fit on this cluster.", hint="Ask for less.")

    sched = instant_scheduler(tmp_path / "store", 6, max_workers=4, policies={"body": StepPolicy(cpu=1)})
    sched.launcher.admission = sched.admission = Refusing()
    try:
        outcome = sched.run()
    finally:
        sched.index.close()
    assert not outcome.ok and outcome.failed[0][0] == "body"
    assert Refusing.asked[0] == "body"
    assert sched.launcher.launched == 1  # only start (the foreach split) ran; no body task did

