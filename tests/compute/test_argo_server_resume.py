"""The production loop Metaflow users ask for, through the fake cluster (tests/argocluster.py: the
fake API server and fake Argo controller, test doubles because no real ones can run here):
`create`, `trigger` a run that fails, fix the cause, `resume RUN_ID` submits a run that clones
what succeeded and re-runs the rest, and the client reads a successful run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from argocluster import ArgoCluster, argo_cluster
from flowrun import FlowRun, run_flow

pytest.importorskip("kubernetes")

FLOW = Path(__file__).parents[1] / "flows" / "argo_resume_flow.py"
RUN_ID = re.compile(r"\(run-id \*(argo-argoresumeflow-\w+)\*\)")


@pytest.fixture
def cluster(s3_server, tmp_path: Path):
    (tmp_path / "argo").mkdir()
    with argo_cluster(tmp_path / "argo", s3_server) as c:
        yield c


def argo(cluster: ArgoCluster, *args: str) -> FlowRun:
    r = run_flow(FLOW, "argo-workflows", *args, root=Path("/unused"), env=cluster.env(), cwd=FLOW.parent)
    assert r.returncode == 0, r.output
    return r


def test_a_failed_run_is_resumed_on_the_cluster(cluster: ArgoCluster, tmp_path: Path, s3_env) -> None:
    side, marker = tmp_path / "side.txt", tmp_path / "fail.marker"
    marker.touch()
    cluster.argo.base_env.update(HW_SIDE_EFFECTS=str(side), HW_FAIL_MARKER=str(marker))
    argo(cluster, "create", "--image", "python:3.12")
    first = RUN_ID.search(argo(cluster, "trigger", "--size", "3").stderr).group(1)
    assert cluster.argo.wait(first[len("argo-"):])["status"]["phase"] == "Failed"
    assert "work 1" in side.read_text() and "join_work" not in side.read_text()
    side.unlink()

    marker.unlink()  # the cause is fixed
    r = argo(cluster, "resume", first, "--run-id-file", str(tmp_path / "resumed.id"))
    second = RUN_ID.search(r.stderr).group(1)
    assert (tmp_path / "resumed.id").read_text() == second != first
    wf = cluster.argo.wait(second[len("argo-"):])
    assert wf["status"]["phase"] == "Succeeded", wf["status"].get("message")
    assert wf["spec"]["arguments"]["parameters"] == [{"name": "origin-run-id", "value": first}]
    assert side.read_text().splitlines() == ["work 1", "join_work", "end"]  # the rest was cloned

    from headwater.client.core import open_run

    run = open_run(f"ArgoResumeFlow/{second}", cluster.root)
    assert run.successful and run.data.size == 3  # the origin's parameters
    work = {t.data.value for t in run["work"]}
    assert work == {0 + 30, 1 + 30, 4 + 30}
    cloned = {t.pathspec.split("/", 2)[2]: t.origin_pathspec for t in run["work"]}
    assert [k for k, v in cloned.items() if v is None] == ["work/1-1"]
