"""Real flows with @pypi steps, run offline through the CLI against wheels the tests build."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import pytest

from envdirs import built_envs
from flowrun import run_flow


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory, offline_env: dict[str, str]):
    """PypiFlow run twice in one store and one HEADWATER_HOME; the envs directory's state after each run."""
    root = tmp_path_factory.mktemp("pypi") / ".headwater"
    envs_home = tmp_path_factory.mktemp("pypi-home")
    leak = tmp_path_factory.mktemp("pythonpath")
    (leak / "hwleakmod.py").write_text("")
    pythonpath = os.pathsep.join(p for p in (str(leak), os.environ.get("PYTHONPATH", "")) if p)
    offline_env = {**offline_env, "HEADWATER_HOME": str(envs_home), "PYTHONPATH": pythonpath}
    first = run_flow("pypi_flow.py", "--environment=pypi", "run", root=root, env=offline_env)
    assert first.returncode == 0, first.output
    built = {p.name: (p.stat().st_ino, (p / "headwater-env.json").stat().st_mtime_ns)
             for p in built_envs(envs_home / "envs")}
    second = run_flow("pypi_flow.py", "--environment=pypi", "run", root=root, env=offline_env)
    assert second.returncode == 0, second.output
    again = {p.name: (p.stat().st_ino, (p / "headwater-env.json").stat().st_mtime_ns)
             for p in built_envs(envs_home / "envs")}
    return root, first, second, built, again


def _run(root: Path, use_root) -> object:
    from headwater import Flow

    use_root(root)
    return Flow("PypiFlow").latest_run


def test_each_step_sees_its_own_version(two_runs, use_root) -> None:
    root, *_ = two_runs
    run = _run(root, use_root)
    assert run["start"].task["tinylib"].data == "1.0.0"
    assert run["two"].task["tinylib"].data == "2.0.0"
    assert run["end"].task["tinylib"].data is None  # no decorator: the launching environment, which has neither


def test_a_step_with_an_environment_does_not_see_the_launching_one(two_runs, use_root) -> None:
    root, *_ = two_runs
    run = _run(root, use_root)
    assert run["start"].task["sees_pytest"].data is False  # headwater is there (the task ran), pytest is not
    assert run["two"].task["sees_pytest"].data is False
    assert run["end"].task["sees_pytest"].data is True


def test_the_launching_pythonpath_does_not_reach_a_step_with_an_environment(two_runs, use_root) -> None:
    root, *_ = two_runs
    run = _run(root, use_root)
    assert run["start"].task["sees_pythonpath"].data is False
    assert run["two"].task["sees_pythonpath"].data is False
    assert run["end"].task["sees_pythonpath"].data is True  # no environment: the launching process's


def test_python_on_path_is_the_environments_own(two_runs, use_root) -> None:
    root, *_ = two_runs
    run = _run(root, use_root)
    for name in ("start", "two"):
        task = run[name].task
        which, executable = Path(task["which_python"].data), Path(task["executable"].data)
        assert which.parent == executable.parent, (which, executable)
        assert "envs" in executable.parts  # under $HEADWATER_HOME/envs/<lock digest>/bin
    assert Path(run["start"].task["executable"].data) != Path(run["two"].task["executable"].data)


def test_tasks_record_their_environment(two_runs, use_root) -> None:
    root, *_ = two_runs
    run = _run(root, use_root)
    start = json.loads(run["start"].task.metadata_dict["environment"])
    assert start["kind"] == "pypi" and start["packages"] == {"tinylib": "1.0.0"}
    assert start["python_version"] == platform.python_version()  # no python=: the launching one
    two = json.loads(run["two"].task.metadata_dict["environment"])
    assert two["packages"] == {"tinylib": "2.0.0"} and two["lock_digest"] != start["lock_digest"]
    assert "environment" not in run["end"].task.metadata_dict


def test_a_second_run_reuses_the_built_environments(two_runs, use_root) -> None:
    _, first, second, built, again = two_runs
    assert len(built) == 2  # one environment per distinct lock
    assert again == built  # same directories, not rebuilt
    assert "tinylib 1.0.0" in second.output


def test_the_run_records_its_locks(two_runs, use_root) -> None:
    root, *_ = two_runs
    run = _run(root, use_root)
    from headwater.store import Datastore

    rec = Datastore(str(root)).records.read_run("PypiFlow", run.id)
    envs = rec["environments"]
    assert set(envs["steps"]) == {"start", "two"}
    lock = envs["locks"][envs["steps"]["start"]]
    assert "tinylib==1.0.0" in lock["text"] and "--hash=sha256:" in lock["text"]


def test_environment_show_prints_what_the_run_used(two_runs, offline_env: dict[str, str]) -> None:
    root, *_ = two_runs
    shown = run_flow("pypi_flow.py", "environment", "show", root=root, env=offline_env)
    assert shown.returncode == 0, shown.output
    assert "start: pypi python" in shown.stdout and "tinylib==1.0.0" in shown.stdout
    assert "tinylib==2.0.0" in shown.stdout
    assert "end: the launching environment" in shown.stdout


def test_environment_resolve_prints_each_steps_packages(tmp_path: Path, offline_env: dict[str, str]) -> None:
    out = run_flow("pypi_flow.py", "--environment=pypi", "environment", "resolve", "--json",
                   root=tmp_path / ".headwater", env=offline_env)
    assert out.returncode == 0, out.output
    steps = json.loads(out.stdout)
    assert [p["version"] for p in steps["start"]["packages"]] == ["1.0.0"]
    assert [p["version"] for p in steps["two"]["packages"]] == ["2.0.0"]
    assert steps["end"] is None


def test_pypi_base_is_merged_with_each_steps_pypi(tmp_path: Path, offline_env: dict[str, str], use_root) -> None:
    root = tmp_path / ".headwater"
    out = run_flow("pypi_base_flow.py", "--environment=pypi", "run", root=root, env=offline_env)
    assert out.returncode == 0, out.output
    from headwater import Flow

    use_root(root)
    run = Flow("PypiBaseFlow").latest_run
    assert run["start"].task["tinylib"].data == "1.0.0"  # from @pypi_base
    assert run["newer"].task["tinylib"].data == "2.0.0"  # the step's version wins
    assert run["end"].task["tinylib"].data is None  # @pypi(disabled=True): no environment


def test_steps_with_environments_run_under_the_subprocess_launcher(tmp_path: Path,
                                                                   offline_env: dict[str, str]) -> None:
    root = tmp_path / ".headwater"
    out = run_flow("pypi_flow.py", "--environment=pypi", "run", root=root, env=offline_env, launcher="subprocess")
    assert out.returncode == 0, out.output
    assert "tinylib 1.0.0" in out.output


def test_a_warm_run_needs_no_index(tmp_path: Path, offline_env: dict[str, str], find_links: Path) -> None:
    """Locks are cached under $HEADWATER_HOME/envs/locks: with the wheels gone (the index as good
    as unreachable) a second run still runs; `environment resolve` and the refresh variable do
    resolve again, and say what is missing."""
    import shutil

    links = tmp_path / "links"
    shutil.copytree(find_links, links)
    env = {**offline_env, "HEADWATER_HOME": str(tmp_path / "home"), "HEADWATER_PYPI_FIND_LINKS": str(links)}
    root = tmp_path / ".headwater"
    first = run_flow("pypi_flow.py", "--environment=pypi", "run", root=root, env=env)
    assert first.returncode == 0, first.output
    assert list((tmp_path / "home" / "envs" / "locks").glob("*.json"))
    for wheel in links.iterdir():
        wheel.unlink()
    warm = run_flow("pypi_flow.py", "--environment=pypi", "run", root=root, env=env)
    assert warm.returncode == 0, warm.output
    assert "tinylib 1.0.0" in warm.output and "Resolving" not in warm.output
    refreshed = run_flow("pypi_flow.py", "--environment=pypi", "run", root=root,
                         env={**env, "HEADWATER_ENVIRONMENT_REFRESH": "1"})
    assert refreshed.returncode == 1 and "Package not found" in refreshed.stderr, refreshed.output
    resolved = run_flow("pypi_flow.py", "--environment=pypi", "environment", "resolve", root=root, env=env)
    assert resolved.returncode == 1 and "Package not found" in resolved.stderr, resolved.output
