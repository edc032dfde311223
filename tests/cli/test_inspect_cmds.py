"""``python flow.py logs|dump|tag`` on real runs, checked through the client."""

from __future__ import annotations

import pickle
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from flowrun import USER, FlowRun, run_flow

TS = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}"


@dataclass
class Runs:
    root: Path
    chatty: str  # ChattyFlow run id
    failing: str  # FailingFlow run id

    def cli(self, flow: str, *args: str) -> FlowRun:
        return run_flow(flow, *args, root=self.root)


def _run_id(r: FlowRun) -> str:
    m = re.search(r"Workflow starting \(run-id (\w+)\)", r.output)
    assert m, r.output
    return m.group(1)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    root = tmp_path_factory.mktemp("inspect") / ".headwater"
    chatty = run_flow("chatty_flow.py", "run", "--tag", "first", root=root)
    assert chatty.returncode == 0, chatty.output
    failing = run_flow("failing_flow.py", "run", root=root)
    assert failing.returncode == 1, failing.output
    return Runs(root, _run_id(chatty), _run_id(failing))


@pytest.fixture
def client(runs: Runs, use_root):
    use_root(runs.root)
    import headwater

    return headwater


def _ok(r: FlowRun) -> FlowRun:
    assert r.returncode == 0, r.output
    return r


def _user_error(r: FlowRun, match: str) -> None:
    """A user error: exit 1, the message on stderr, no traceback."""
    assert r.returncode == 1, r.output
    assert re.search(match, r.stderr), r.stderr
    assert "Traceback" not in r.stderr


# -- logs -----------------------------------------------------------------------------------


def test_logs_of_a_task_stdout_then_stderr(runs: Runs, client) -> None:
    r = _ok(runs.cli("chatty_flow.py", "logs", f"{runs.chatty}/start/1"))
    assert r.stdout == "start out\nstart err\n"
    assert "headwater" not in r.stderr  # no banner
    task = client.Task(f"ChattyFlow/{runs.chatty}/start/1")
    assert task.stdout == "start out\n" and task.stderr == "start err\n"  # prefixes stripped
    assert task.stdout_size == len("start out\n")


@pytest.mark.parametrize("flag, expected", [("--stdout", "start out\n"), ("--stderr", "start err\n"),
                                            ("--both", "start out\nstart err\n")])  # fmt: skip
def test_logs_stream_choice(runs: Runs, flag: str, expected: str) -> None:
    assert _ok(runs.cli("chatty_flow.py", "logs", flag, f"{runs.chatty}/start/1")).stdout == expected


def test_logs_accept_the_full_pathspec(runs: Runs) -> None:
    r = _ok(runs.cli("chatty_flow.py", "logs", "--stdout", f"ChattyFlow/{runs.chatty}/start/1"))
    assert r.stdout == "start out\n"
    r = _ok(runs.cli("chatty_flow.py", "logs", "--stdout", f"ChattyFlow/{runs.chatty}/start"))
    assert r.stdout == "start out\n"  # one task: no header


def test_logs_of_a_step_with_several_tasks(runs: Runs) -> None:
    r = _ok(runs.cli("chatty_flow.py", "logs", "--stdout", f"{runs.chatty}/work"))
    expected = "".join(f"==> ChattyFlow/{runs.chatty}/work/{tid} (attempt 0) <==\nitem {x}\nsecond line {x}\n"
                       for tid, x in ((2, "a"), (3, "b"), (4, "c")))  # fmt: skip
    assert r.stdout == expected


def test_logs_timestamps(runs: Runs, client) -> None:
    r = _ok(runs.cli("chatty_flow.py", "logs", "--timestamps", "--stdout", f"{runs.chatty}/work/3"))
    lines = r.stdout.splitlines()
    assert len(lines) == 2
    assert re.fullmatch(TS + " item b", lines[0]) and re.fullmatch(TS + " second line b", lines[1])
    task = client.Task(f"ChattyFlow/{runs.chatty}/work/3")
    got = list(task.loglines("stdout"))
    assert [line for _, line in got] == ["item b", "second line b"]
    for (when, text), shown in zip(got, lines):
        assert isinstance(when, datetime) and task.created_at <= when <= task.finished_at
        assert shown == when.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " " + text
    assert [line for _, line in task.loglines("stdout", as_unicode=False)] == [b"item b", b"second line b"]


def test_lines_without_a_timestamp(runs: Runs, client, tmp_path: Path) -> None:
    # Output written below Python (a C extension, a child process) carries no prefix.
    log = runs.root / "runs" / "ChattyFlow" / runs.chatty / "join" / "5" / "0.stdout"
    log.write_bytes(b"from C\n\x1e1763841234.500000\x1ffrom Python\n")
    r = _ok(runs.cli("chatty_flow.py", "logs", "--timestamps", "--stdout", f"{runs.chatty}/join/5"))
    first, second = r.stdout.splitlines()
    assert first == " " * 23 + " from C" and re.fullmatch(TS + " from Python", second)
    task = client.Task(f"ChattyFlow/{runs.chatty}/join/5")
    assert list(task.loglines("stdout")) == [(None, "from C"), (datetime.fromtimestamp(1763841234.5), "from Python")]
    assert task.stdout == "from C\nfrom Python\n"


def test_logs_of_a_failed_task_and_attempts(runs: Runs) -> None:
    r = _ok(runs.cli("failing_flow.py", "logs", "--stderr", "--attempt", "0", f"{runs.failing}/work/4"))
    assert "ValueError: boom in task 2" in r.stdout
    _user_error(runs.cli("failing_flow.py", "logs", "--attempt", "1", f"{runs.failing}/work/4"),
                r"Task 'FailingFlow/\w+/work/4' has no attempt 1")  # fmt: skip
    _user_error(runs.cli("failing_flow.py", "logs", "--attempt", "3", f"{runs.failing}/work"),
                r"No task of step 'FailingFlow/\w+/work' has an attempt 3")  # fmt: skip


@pytest.mark.parametrize(
    "pathspec, match",
    [
        ("start", r"logs: expected RUN_ID/STEP or RUN_ID/STEP/TASK_ID, got 'start'"),
        ("1/2/3/4/5", r"expected RUN_ID/STEP or RUN_ID/STEP/TASK_ID, got '1/2/3/4/5'"),
        ("OtherFlow/1/start/1", r"names the flow 'OtherFlow', but this is ChattyFlow"),
        ("999/start", r"Step 'ChattyFlow/999/start' does not exist: there is no run 'ChattyFlow/999'"),
        ("{run}/nope", r"Step 'ChattyFlow/\w+/nope' does not exist"),
        ("{run}/start/77", r"Task 'ChattyFlow/\w+/start/77' does not exist"),
    ],
)
def test_logs_errors(runs: Runs, pathspec: str, match: str) -> None:
    _user_error(runs.cli("chatty_flow.py", "logs", pathspec.format(run=runs.chatty)), match)


# -- dump -----------------------------------------------------------------------------------


def test_dump_a_task(runs: Runs) -> None:
    r = _ok(runs.cli("chatty_flow.py", "dump", f"{runs.chatty}/work/2"))
    big = repr(list(range(1000)))  # longer than --max-value-size's default, 1000
    assert r.stdout.splitlines() == [
        f"ChattyFlow/{runs.chatty}/work/2 (attempt 0):",
        f"    big = {big[:1000]}... ({len(big) - 1000} more characters)",
        "    item = 'a'",
        "    items = ['a', 'b', 'c']",
        "    name = 'ChattyFlow'",
    ]


def test_dump_options(runs: Runs) -> None:
    base = f"ChattyFlow/{runs.chatty}/start/1 (attempt 0):"
    r = _ok(runs.cli("chatty_flow.py", "dump", "--include", "items,_hidden", f"{runs.chatty}/start/1"))
    assert r.stdout.splitlines() == [base, "    items = ['a', 'b', 'c']"]  # _private needs --private
    r = _ok(runs.cli("chatty_flow.py", "dump", "--private", "--include", "items,_hidden", "--max-value-size", "5",
                     f"{runs.chatty}/start/1"))  # fmt: skip
    assert r.stdout.splitlines() == [base, "    items = ['a',... (10 more characters)",
                                     "    _hidden = 'priv... (4 more characters)"]  # fmt: skip
    r = _ok(runs.cli("chatty_flow.py", "dump", "--max-value-size", "0", "--include", "items", f"{runs.chatty}/start"))
    assert re.fullmatch(r"    items  <builtins\.list, \d+ bytes>", r.stdout.splitlines()[1])


def test_dump_a_step_to_a_file(runs: Runs, client, tmp_path: Path) -> None:
    out = tmp_path / "dump.pkl"
    r = _ok(runs.cli("chatty_flow.py", "dump", "--private", "--file", str(out), f"{runs.chatty}/work"))
    assert r.stdout == "" and "Wrote 18 artifacts of 3 tasks" in r.stderr
    data = pickle.loads(out.read_bytes())
    step = client.Step(f"ChattyFlow/{runs.chatty}/work")
    assert set(data) == {t.pathspec for t in step}
    for task in step:
        assert data[task.pathspec]["item"] == task.data.item
        assert data[task.pathspec]["_hidden"] == "private"
        assert set(data[task.pathspec]) == {"big", "item", "items", "name", "_hidden", "_graph_info"}


def test_dump_of_failed_and_killed_tasks(runs: Runs) -> None:
    r = _ok(runs.cli("failing_flow.py", "dump", f"FailingFlow/{runs.failing}/work"))
    heads = [line for line in r.stdout.splitlines() if not line.startswith(" ")]
    lines = dict(line.split(": ", 1) for line in heads)
    # The failed attempt keeps what it had (here its foreach inputs), as in Metaflow.
    assert lines[f"FailingFlow/{runs.failing}/work/4 (attempt 0)"] == (
        "failed (ValueError: boom in task 2); its artifacts:")
    assert "    items = " in r.stdout
    killed = [v for k, v in lines.items() if not k.startswith(f"FailingFlow/{runs.failing}/work/4 ")]
    assert killed and all(v == "ended without committing (killed or crashed); no artifacts." for v in killed)


def test_dump_errors(runs: Runs) -> None:
    _user_error(runs.cli("chatty_flow.py", "dump", "nope"), r"dump: expected RUN_ID/STEP or RUN_ID/STEP/TASK_ID")
    _user_error(runs.cli("chatty_flow.py", "dump", "123/start"), r"there is no run 'ChattyFlow/123'")


# -- tag -------------------------------------------------------------------------------------


def test_tag_add_remove_replace_on_the_latest_run(runs: Runs, client) -> None:
    run = client.Run(f"ChattyFlow/{runs.chatty}")
    assert run.user_tags == {"first"}
    r = _ok(runs.cli("chatty_flow.py", "tag", "add", "x", "y"))
    assert f"Added tags 'x', 'y' to run ChattyFlow/{runs.chatty}." in r.stderr
    assert client.Run(f"ChattyFlow/{runs.chatty}").user_tags == {"first", "x", "y"}
    _ok(runs.cli("chatty_flow.py", "tag", "remove", "--run-id", runs.chatty, "first"))
    _ok(runs.cli("chatty_flow.py", "tag", "replace", "--run-id", runs.chatty, "--remove", "x", "--remove", "y",
                 "--add", "z"))  # fmt: skip
    run = client.Run(f"ChattyFlow/{runs.chatty}")
    assert run.user_tags == {"z"}
    assert [r.id for r in client.Flow("ChattyFlow").runs("z")] == [runs.chatty]
    r = _ok(runs.cli("chatty_flow.py", "tag", "list"))
    assert r.stderr.splitlines() == [f"ChattyFlow/{runs.chatty}", "    user tags:   z",
                                     "    system tags: " + ", ".join(sorted(run.system_tags))]  # fmt: skip
    r = _ok(runs.cli("chatty_flow.py", "tag", "list", "--all", "--hide-system-tags"))
    assert r.stderr.splitlines() == [f"ChattyFlow/{runs.chatty}", "    user tags:   z"]
    _ok(runs.cli("chatty_flow.py", "tag", "replace", "--remove", "z", "--add", "first"))
    assert client.Run(f"ChattyFlow/{runs.chatty}").user_tags == {"first"}


def test_tag_errors(runs: Runs) -> None:
    _user_error(runs.cli("chatty_flow.py", "tag", "remove", f"user:{USER}"),
                rf"Cannot remove the tag 'user:{USER}' .* system tag")  # fmt: skip
    _user_error(runs.cli("chatty_flow.py", "tag", "add", "--run-id", "123", "x"), r"Run 'ChattyFlow/123' does not exist")
    _user_error(runs.cli("chatty_flow.py", "tag", "add", ""), r"Tag '' is empty")
    r = runs.cli("chatty_flow.py", "tag", "replace", "--run-id", runs.chatty)
    assert r.returncode == 2 and "Give at least one --add TAG or --remove TAG" in r.stderr
    r = run_flow("chatty_flow.py", "tag", "add", "x", root=runs.root, env={"HEADWATER_USER": "someone-else"})
    _user_error(r, r"Flow 'ChattyFlow' has no runs in the current namespace 'user:someone-else'")
    assert "--run-id" in r.stderr


@pytest.mark.parametrize("args", [["logs"], ["dump"], ["tag"], ["tag", "add"], ["tag", "remove"],
                                  ["tag", "replace"], ["tag", "list"]])  # fmt: skip
def test_help(runs: Runs, args: list[str]) -> None:
    r = _ok(runs.cli("chatty_flow.py", *args, "--help"))
    assert "Usage:" in r.stdout
