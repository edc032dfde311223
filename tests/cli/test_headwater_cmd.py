"""The ``headwater`` command: runs, show, reindex, on real runs in a tmp store."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from flowrun import USER, FlowRun, run_flow
from headwater.cli.main import COMMANDS, cli
from headwater.meta.index import Index


@dataclass
class Store:
    root: Path
    linear: str  # LinearFlow by USER, tagged nightly (oldest)
    failing: str  # FailingFlow by USER
    branch: str  # BranchFlow by "other" (newest)


def _run_id(r: FlowRun) -> str:
    m = re.search(r"Workflow starting \(run-id (\w+)\)", r.output)
    assert m, r.output
    return m.group(1)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    root = tmp_path_factory.mktemp("hwcmd") / ".headwater"
    linear = run_flow("linear_flow.py", "run", "--tag", "nightly", root=root)
    failing = run_flow("failing_flow.py", "run", root=root)
    branch = run_flow("branch_flow.py", "run", root=root, env={"HEADWATER_USER": "other"})
    assert linear.returncode == 0 and failing.returncode == 1 and branch.returncode == 0
    return Store(root, _run_id(linear), _run_id(failing), _run_id(branch))


def hw(store: Store, *args: str, user: str = USER) -> Result:
    env = {"HEADWATER_DATASTORE_ROOT": str(store.root), "HEADWATER_USER": user}
    return CliRunner().invoke(cli, list(args), env=env)


def _rows(output: str) -> list[list[str]]:
    """Table rows split on runs of 2+ spaces (cells hold single spaces, e.g. dates)."""
    return [re.split(r" {2,}", line) for line in output.splitlines()]


def test_runs_lists_my_runs_newest_first(store: Store) -> None:
    r = hw(store, "runs")
    assert r.exit_code == 0, r.output
    header, *rows = _rows(r.output)
    assert header == ["FLOW", "RUN ID", "STATUS", "STARTED", "DURATION", "USER", "TAGS"]
    assert [(row[0], row[1], row[2]) for row in rows] == [
        ("FailingFlow", store.failing, "failed"), ("LinearFlow", store.linear, "successful")]  # fmt: skip
    linear = rows[1]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", linear[3])
    assert re.fullmatch(r"\d+(\.\d)?m?s", linear[4])
    assert linear[5:] == [USER, "nightly"]


def test_runs_options(store: Store) -> None:
    r = hw(store, "runs", "--all")
    assert [row[1] for row in _rows(r.output)[1:]] == [store.branch, store.failing, store.linear]
    assert _rows(r.output)[1][5] == "other"
    r = hw(store, "runs", "--all", "--limit", "2")
    assert [row[1] for row in _rows(r.output)[1:]] == [store.branch, store.failing]
    r = hw(store, "runs", "LinearFlow")
    assert [row[1] for row in _rows(r.output)[1:]] == [store.linear]
    r = hw(store, "runs", "BranchFlow")
    assert r.exit_code == 0 and r.stdout == ""
    assert f"No runs of BranchFlow by user:{USER} in {store.root} (--all shows everyone's)." in r.stderr
    r = hw(store, "runs", "--datastore-root", str(store.root), user="other")
    assert [row[1] for row in _rows(r.output)[1:]] == [store.branch]


def test_runs_shows_tags_changed_later(store: Store, use_root) -> None:
    use_root(store.root)
    from headwater import Run

    Run(f"LinearFlow/{store.linear}").add_tag("reviewed")
    try:
        line = next(row for row in _rows(hw(store, "runs").output) if row[1] == store.linear)
        assert line[6] == "nightly, reviewed"
    finally:
        Run(f"LinearFlow/{store.linear}").remove_tag("reviewed")


def test_show_a_successful_run(store: Store) -> None:
    r = hw(store, "show", f"LinearFlow/{store.linear}")
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0] == f"Run LinearFlow/{store.linear}: successful"
    assert "    tags: nightly" in lines
    steps = _rows(r.output[r.output.index("STEP"):])
    assert steps[0] == ["STEP", "TASKS", "OK", "FAILED", "RUNNING", "STATUS", "STARTED", "DURATION"]
    assert [row[:6] for row in steps[1:]] == [[s, "1", "1", "0", "0", "ok"] for s in ("start", "middle", "end")]


def test_show_a_failed_run(store: Store) -> None:
    r = hw(store, "show", f"FailingFlow/{store.failing}")
    assert r.output.splitlines()[0] == f"Run FailingFlow/{store.failing}: failed"
    steps = {row[0]: row[1:6] for row in _rows(r.output[r.output.index("STEP"):])[1:]}
    # task 2 raised; its 3 siblings were killed before committing: all failed
    assert steps == {"start": ["1", "1", "0", "0", "ok"], "work": ["4", "0", "4", "0", "failed"]}


@pytest.mark.parametrize(
    "args, match",
    [
        (["show", "LinearFlow"], r"show expects FLOW/RUN_ID, got 'LinearFlow'"),
        (["show", "LinearFlow/123"], r"Run 'LinearFlow/123' does not exist.\n.*The most recent runs of 'LinearFlow'"),
        (["runs", "--datastore-root", "/nonexistent/x"], r"There is no datastore at /nonexistent/x"),
        (["reindex", "--datastore-root", "/nonexistent/x"], r"There is no datastore at /nonexistent/x"),
    ],
)
def test_errors(store: Store, args: list[str], match: str) -> None:
    r = hw(store, *args)
    assert r.exit_code == 1 and re.search(match, r.stderr, re.S), r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)


def test_reindex_rebuilds_the_index(store: Store, use_root) -> None:
    use_root(store.root)
    from headwater import Run

    Run(f"LinearFlow/{store.linear}").replace_tag("nightly", "weekly")
    try:
        before = hw(store, "runs", "--all").output
        with Index(store.root) as idx:  # the cache drifts from the store
            idx.set_tags("LinearFlow", store.linear, ["stale"])
        assert "stale" in hw(store, "runs", "--all").output
        r = hw(store, "reindex")
        assert r.exit_code == 0, r.output
        m = re.fullmatch(rf"Reindexed {re.escape(str(store.root))}: 3 runs, (\d+) task attempts in \S+\.\n", r.stdout)
        # Records only: linear 3 steps + _parameters, failing start + the task that raised + _parameters
        # (its killed siblings never committed), branch 5 steps + _parameters.
        assert m and int(m.group(1)) == 4 + 3 + 6
        assert hw(store, "runs", "--all").output == before  # tags replayed from the tag events
        assert "weekly" in before
    finally:
        Run(f"LinearFlow/{store.linear}").replace_tag("weekly", "nightly")


@pytest.mark.parametrize("name", sorted(COMMANDS) + ["version"])
def test_help_of_every_command(name: str) -> None:
    r = CliRunner().invoke(cli, [name, "--help"])
    assert r.exit_code == 0 and "Usage:" in r.output


def test_the_installed_command_is_lazy() -> None:
    exe = Path(sys.executable).parent / "headwater"
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True, check=True).stdout
    assert all(name in out for name in ("runs", "show", "reindex", "version"))
    code = "import sys, headwater.cli.main; print('headwater.cli.store_cmds' in sys.modules, 'headwater.client' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False False\n"
