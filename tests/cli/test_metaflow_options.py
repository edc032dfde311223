"""The command lines Metaflow users type: top-level options, ``--with`` after the command,
``tag list --flat``, ``output-dot``, ``show``, ``version``, ``card get|view STEP``; real runs, checked
through the client."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

import headwater
from flowrun import FlowRun, run_flow

FLOW = "cli_options_flow.py"
RETRY = "retry:minutes_between_retries=0"
LOCAL_OPTIONS = ["--metadata=local", "--datastore=local", "--environment", "local",
                 "--event-logger=nullSidecarLogger", "--monitor", "nullSidecarMonitor", "--no-pylint",
                 "--package-suffixes=.py,.R"]  # fmt: skip


@dataclass
class Runs:
    root: Path
    flaky: str  # failed: HW_FLAKY set, no retry
    retried: str  # `run --with retry`, every local top-level option, tags

    def cli(self, *args: str, **kw) -> FlowRun:
        return run_flow(FLOW, *args, root=self.root, **kw)


def _ok(r: FlowRun) -> FlowRun:
    assert r.returncode == 0, r.output
    return r


def _run_id(tmp: Path) -> str:
    return tmp.read_text().strip()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    base = tmp_path_factory.mktemp("mfopts")
    root = base / ".headwater"
    r = run_flow(FLOW, "run", "--run-id-file", str(base / "flaky"), root=root, env={"HW_FLAKY": "1"})
    assert r.returncode == 1 and "flaky fails on its first attempt" in r.output, r.output
    r = run_flow(FLOW, *LOCAL_OPTIONS, "--datastore-root", str(root), "run", "--with", RETRY, "--tag", "nightly",
                 "--tag", "team:ml", "--run-id-file", str(base / "retried"), root=base / "unused",
                 env={"HW_FLAKY": "1"})  # fmt: skip
    assert r.returncode == 0, r.output
    assert not (base / "unused").exists()  # --datastore-root won over the environment
    return Runs(root, _run_id(base / "flaky"), _run_id(base / "retried"))


@pytest.fixture
def client(runs: Runs, use_root):
    use_root(runs.root)
    return headwater


# -- top-level options ------------------------------------------------------------------------


def test_local_values_of_every_top_level_option_run_the_flow(runs: Runs, client) -> None:
    run = client.Run(f"CliOptionsFlow/{runs.retried}")
    assert run.successful and run.data.total == 60
    assert run["flaky"].task.data.attempts == 1  # `run --with retry` retried the failed attempt
    assert {"nightly", "team:ml"} <= run.user_tags


@pytest.mark.parametrize("args", [["--pylint", "check"], ["--quiet", "--no-pylint", "check"],
                                  ["--datastore", "local", "--metadata", "local", "version"]])  # fmt: skip
def test_top_level_options_on_other_commands(runs: Runs, args: list[str]) -> None:
    r = _ok(runs.cli(*args))
    assert ("executing CliOptionsFlow" in r.stderr) == ("--quiet" not in args)


@pytest.mark.parametrize("args, message", [
    (["--datastore=gs"], r"--datastore=gs is not supported yet by headwater \(supported: local, s3\)\."),
    (["--metadata", "service"], r"--metadata=service is not supported yet by headwater \(supported: local\)\."),
    (["--environment=docker"], r"--environment=docker is not a valid value \(Metaflow knows: local, pypi, conda, uv; "
                               r"headwater supports: local, pypi, conda, uv\)\."),
    (["--datastore=ftp"], r"--datastore=ftp is not a valid value \(Metaflow knows: local, s3, azure, gs, spin; "
                          r"headwater supports: local, s3\)\."),
])
def test_unsupported_values_are_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    root = tmp_path / ".headwater"
    r = run_flow(FLOW, *args, "run", root=root)
    assert r.returncode == 2, r.output
    assert re.search(message, r.stderr), r.stderr
    flag = args[0].split("=")[0]
    assert f"Hint: Leave out {flag} or pass {flag}=" in r.stderr
    assert "Traceback" not in r.stderr and not root.exists()


def test_default_from_the_environment(tmp_path: Path) -> None:
    for var in ("HEADWATER_DATASTORE", "HEADWATER_DEFAULT_DATASTORE"):
        r = run_flow(FLOW, "check", root=tmp_path / ".headwater", env={var: "s3"})
        assert r.returncode == 1 and "--datastore=s3 needs an S3 root, and none is configured." in r.stderr
        assert "Hint: Set HEADWATER_DATASTORE_ROOT=s3://bucket/prefix" in r.stderr and "Traceback" not in r.stderr
    _ok(run_flow(FLOW, "check", root=tmp_path / ".headwater", env={"HEADWATER_DEFAULT_DATASTORE": "local"}))


@pytest.mark.parametrize("args, message", [
    (["--datastore=local", "--datastore-root=s3://bucket/p"], "--datastore=local does not match the datastore root"),
    (["--datastore=s3", "--datastore-root=/tmp/x"], "--datastore=s3 does not match the datastore root '/tmp/x'"),
])
def test_datastore_kind_and_root_must_agree(tmp_path: Path, args: list[str], message: str) -> None:
    r = run_flow(FLOW, *args, "run", root=tmp_path / ".headwater")
    assert r.returncode == 1 and message in r.stderr and "Traceback" not in r.stderr, r.output


def test_metaflow_event_logger_and_monitor_are_accepted_and_ignored(tmp_path: Path) -> None:
    root = tmp_path / ".headwater"
    r = _ok(run_flow(FLOW, "--event-logger=debugLogger", "--monitor=debugMonitor", "run", root=root))
    assert "Done!" in r.stdout


# -- --with after the command ----------------------------------------------------------------------


def test_with_after_resume_and_before_run(runs: Runs, client, tmp_path: Path) -> None:
    r = _ok(runs.cli("resume", "--origin-run-id", runs.flaky, "--with", RETRY, "--run-id-file",
                     str(tmp_path / "id"), env={"HW_FLAKY": "1"}))  # fmt: skip
    resumed = client.Run(f"CliOptionsFlow/{_run_id(tmp_path / 'id')}")
    assert resumed.successful and resumed["flaky"].task.data.attempts == 1, r.output
    _ok(runs.cli("--with", RETRY, "run", "--run-id-file", str(tmp_path / "id2"), env={"HW_FLAKY": "1"}))
    assert client.Run(f"CliOptionsFlow/{_run_id(tmp_path / 'id2')}")["flaky"].task.data.attempts == 1


@pytest.mark.parametrize("args, seen", [([], "user:tester"), (["--namespace", "team:ml"], "team:ml"),
                                        (["--namespace="], None)])  # fmt: skip
def test_run_namespace_is_what_the_steps_client_sees(runs: Runs, client, tmp_path: Path, args: list[str],
                                                    seen: str | None) -> None:  # fmt: skip
    _ok(runs.cli("run", *args, "--run-id-file", str(tmp_path / "id")))
    run = client.Run(f"CliOptionsFlow/{_run_id(tmp_path / 'id')}")
    assert run["start"].task.data.namespace_seen == seen
    assert "team:ml" not in run.tags  # the run's own tags do not change


def test_run_namespace_reaches_tasks_in_a_fresh_interpreter(runs: Runs, client, tmp_path: Path) -> None:
    _ok(runs.cli("run", "--namespace", "team:ml", "--run-id-file", str(tmp_path / "id"), launcher="subprocess"))
    run = client.Run(f"CliOptionsFlow/{_run_id(tmp_path / 'id')}")
    assert run["start"].task.data.namespace_seen == "team:ml"


# -- tag list --flat, output-dot, version ------------------------------------------------------------


def test_tag_list_flat(runs: Runs, client) -> None:
    r = _ok(runs.cli("tag", "list", "--flat", "--run-id", runs.retried))
    run = client.Run(f"CliOptionsFlow/{runs.retried}")
    assert r.stdout == ""
    assert r.stderr.splitlines() == sorted(run.tags)  # one per line on stderr, as Metaflow prints them
    r = _ok(runs.cli("--quiet", "tag", "list", runs.retried, "--flat", "--hide-system-tags"))
    assert r.stderr.splitlines() == ["nightly", "team:ml"]
    r = _ok(runs.cli("--quiet", "tag", "list", "--flat", "--my-runs"))
    every = set().union(*(x.tags for x in client.Flow("CliOptionsFlow").runs()))
    assert r.stderr.splitlines() == sorted(every)
    r = runs.cli("tag", "list", "--all", "--my-runs")
    assert r.returncode == 1 and "--all cannot be used together with --my-runs" in r.stderr  # as Metaflow


def test_output_dot_is_metaflows_graphviz_text(runs: Runs) -> None:
    r = _ok(runs.cli("output-dot"))
    assert "Visualizing the flow as a GraphViz graph" in r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "digraph CliOptionsFlow {" and lines[-1] == "}"
    nodes = dict(re.fullmatch(r'"(\w+)"\[ label = <<b>\1</b> \| <font point-size="10">(\w+)</font>>   '
                              r'fontname = "Helvetica"   shape = "record" \];', line).groups()
                 for line in lines if line.startswith('"'))  # fmt: skip
    assert nodes == {"body": "linear", "end": "end", "flaky": "linear", "join": "join", "start": "foreach"}
    assert list(nodes) == sorted(nodes)
    edges = [line for line in lines[1:-1] if not line.startswith('"')]
    assert edges == ["body -> join;", "flaky -> end;", "join -> flaky;", "start -> body;"]


def test_show_lists_steps_on_stdout_and_the_docstring_on_stderr(runs: Runs) -> None:
    r = _ok(runs.cli("--with", "retry", "show"))
    assert r.stdout.splitlines()[:8] == [
        "@retry", "Step start", "    ?", "    => body",
        "@card", "@retry", "Step body", "    ?"]  # a step's own decorators, then --with's  # fmt: skip
    assert r.stdout.endswith("Step end\n    ?\n")
    banner, *spacing = r.stderr.splitlines()  # the class has no docstring; a blank line before each step
    assert "executing CliOptionsFlow" in banner and spacing == [""] * 8
    assert "@retry" not in _ok(runs.cli("--quiet", "show")).stdout


def test_version(runs: Runs) -> None:
    r = _ok(runs.cli("version"))
    assert r.stdout == "" and r.stderr.splitlines()[-1] == headwater.__version__
    assert "executing CliOptionsFlow" in r.stderr
    assert _ok(runs.cli("--quiet", "version")).stderr == headwater.__version__ + "\n"


# -- card get|view STEP ------------------------------------------------------------------------


def test_card_of_a_bare_step_is_the_newest_task_of_the_latest_run(runs: Runs, client, tmp_path: Path) -> None:
    latest = client.Flow("CliOptionsFlow").latest_run
    task = latest["body"].task
    r = _ok(runs.cli("card", "get", "body", str(tmp_path / "bare.html")))
    assert f"of {task.pathspec} to" in r.stderr
    _ok(runs.cli("card", "get", task.pathspec, str(tmp_path / "full.html")))
    assert (tmp_path / "bare.html").read_text() == (tmp_path / "full.html").read_text()
    r = _ok(runs.cli("card", "view", "body", "--no-open"))
    assert Path(r.stdout.strip()).read_text() == (tmp_path / "full.html").read_text()
    r = runs.cli("card", "get", "bdoy")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert f"the latest run of CliOptionsFlow ({latest.pathspec}) has no task of step 'bdoy'" in r.stderr
    assert "Its steps: " in r.stderr
