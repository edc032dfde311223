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


def _line(name: str, size: int, typ: str, value: str) -> str:
    return f"{name} [size: {size} type: <class '{typ}'>] = {value}"


def test_dump_a_task(runs: Runs, client) -> None:
    r = _ok(runs.cli("chatty_flow.py", "dump", f"{runs.chatty}/work/2"))
    refs = client.Task(f"ChattyFlow/{runs.chatty}/work/2")._refs()
    size = {n: refs[n]["size"] for n in refs}
    assert size["big"] > 1000  # over --max-value-size's default, 1000 bytes
    assert r.stdout.splitlines() == [  # sorted by name, str() of the value, as Metaflow prints them
        _line("big", size["big"], "list", "< artifact too large >"),
        _line("item", size["item"], "str", "a"),
        _line("items", size["items"], "list", "['a', 'b', 'c']"),
        _line("name", size["name"], "str", "ChattyFlow"),
    ]
    assert r.stderr.splitlines()[-1] == f"Dumping output of run_id={runs.chatty} step=work task_id=2"


def test_dump_options(runs: Runs) -> None:
    r = _ok(runs.cli("chatty_flow.py", "dump", "--include", "items,_hidden", f"{runs.chatty}/start/1"))
    assert [line.split(" [")[0] for line in r.stdout.splitlines()] == ["items"]  # _private needs --private
    r = _ok(runs.cli("chatty_flow.py", "dump", "--private", "--include", "items,_hidden,nosuch",
                     "--max-value-size", "25", f"{runs.chatty}/start/1"))  # fmt: skip
    lines = r.stdout.splitlines()
    assert [line.split(" [")[0] for line in lines] == ["_hidden", "items"]
    assert re.fullmatch(r"_hidden \[size: (\d+) type: <class 'str'>\] = private", lines[0])
    assert re.fullmatch(r"items \[size: \d+ type: <class 'list'>\] = < artifact too large >", lines[1])
    r = _ok(runs.cli("chatty_flow.py", "dump", "--max-value-size", "1000000", "--include", "big",
                     f"{runs.chatty}/start"))  # fmt: skip
    assert r.stdout.endswith(f"= {list(range(1000))}\n")
    r = _ok(runs.cli("chatty_flow.py", "--quiet", "dump", "--include", "items", f"{runs.chatty}/start"))
    assert r.stderr == "" and r.stdout.startswith("items [size: ")


def test_dump_a_step_to_a_file(runs: Runs, client, tmp_path: Path) -> None:
    out = tmp_path / "dump.pkl"
    r = _ok(runs.cli("chatty_flow.py", "dump", "--private", "--file", str(out), f"{runs.chatty}/work"))
    assert r.stdout == "" and r.stderr.splitlines()[-1] == f"Artifacts written to {out}"
    data = pickle.loads(out.read_bytes())
    step = client.Step(f"ChattyFlow/{runs.chatty}/work")
    assert set(data) == {f"{runs.chatty}/work/{t.id}" for t in step}  # keyed RUN/STEP/TASK, as Metaflow
    for task in step:
        got = data[f"{runs.chatty}/work/{task.id}"]
        assert got["item"] == task.data.item and got["_hidden"] == "private"
        assert got["big"] == list(range(1000))  # no size limit in the file
        assert set(got) == {"big", "item", "items", "name", "_hidden", "_graph_info"}


def test_dump_of_failed_and_killed_tasks(runs: Runs) -> None:
    r = _ok(runs.cli("failing_flow.py", "dump", f"FailingFlow/{runs.failing}/work"))
    # The failed attempt keeps what it had (here its foreach inputs), as in Metaflow.
    assert re.search(r"^items \[size: \d+ type: <class 'list'>\] = ", r.stdout, re.M)
    assert "ended without committing (killed or crashed): no artifacts." in r.stderr


def test_dump_errors(runs: Runs) -> None:
    _user_error(runs.cli("chatty_flow.py", "dump", "nope"), r"dump: expected RUN_ID/STEP or RUN_ID/STEP/TASK_ID")
    _user_error(runs.cli("chatty_flow.py", "dump", "123/start"), r"there is no run 'ChattyFlow/123'")


# -- logs show / scrub -----------------------------------------------------------------------


def test_logs_show_is_the_default_subcommand(runs: Runs) -> None:
    short = _ok(runs.cli("chatty_flow.py", "logs", "--stdout", f"{runs.chatty}/work"))
    explicit = _ok(runs.cli("chatty_flow.py", "logs", "show", "--stdout", f"{runs.chatty}/work"))
    assert explicit.stdout == short.stdout and f"==> ChattyFlow/{runs.chatty}/work/2" in short.stdout
    assert _ok(runs.cli("chatty_flow.py", "logs", "show", f"{runs.chatty}/start/1")).stdout == "start out\nstart err\n"


def test_logs_scrub_is_not_supported_yet(runs: Runs) -> None:
    _user_error(runs.cli("chatty_flow.py", "logs", "scrub", "--stdout", f"{runs.chatty}/start"),
                r"logs scrub \w+/start: erasing logs is not supported by headwater yet")  # fmt: skip


# -- tag -------------------------------------------------------------------------------------


def test_tag_add_remove_replace(runs: Runs, client) -> None:
    run = client.Run(f"ChattyFlow/{runs.chatty}")
    assert run.user_tags == {"first"}
    r = _ok(runs.cli("chatty_flow.py", "tag", "add", "--run-id", runs.chatty, "x", "y"))
    assert r.stdout.startswith("Operation successful. New tags:\n\nSystem tags and tags; only tags can be modified\n")
    assert client.Run(f"ChattyFlow/{runs.chatty}").user_tags == {"first", "x", "y"}
    r = _ok(runs.cli("chatty_flow.py", "tag", "remove", "--run-id", runs.chatty, "first"))
    assert r.stderr.splitlines()[-1] == "Operation successful. New tags:" and "first" not in r.stdout
    _ok(runs.cli("chatty_flow.py", "tag", "replace", "--run-id", runs.chatty, "--remove", "x", "--remove", "y",
                 "--add", "z"))  # fmt: skip
    assert client.Run(f"ChattyFlow/{runs.chatty}").user_tags == {"z"}
    assert [r.id for r in client.Flow("ChattyFlow").runs("z")] == [runs.chatty]
    _ok(runs.cli("chatty_flow.py", "tag", "replace", "--run-id", runs.chatty, "--remove", "z", "--add", "first"))
    assert client.Run(f"ChattyFlow/{runs.chatty}").user_tags == {"first"}


def test_tag_errors(runs: Runs) -> None:
    r = runs.cli("chatty_flow.py", "tag", "add", "x")
    _user_error(r, rf"Please specify a run-id using --run-id\.\n\s*ChattyFlow's latest run in namespace "
                   rf"user:{USER} has id {runs.chatty}\.")  # fmt: skip
    _user_error(runs.cli("chatty_flow.py", "tag", "remove", "--run-id", runs.chatty, f"user:{USER}"),
                rf"Cannot remove the tag 'user:{USER}' .* system tag")  # fmt: skip
    _user_error(runs.cli("chatty_flow.py", "tag", "add", "--run-id", "123", "x"),
                r"No run ChattyFlow/123 found for flow ChattyFlow")  # fmt: skip
    _user_error(runs.cli("chatty_flow.py", "tag", "add", "--run-id", f"ChattyFlow/{runs.chatty}", "x"),
                r"Run-id ChattyFlow/\w+ is not a valid run-id")  # fmt: skip
    _user_error(runs.cli("chatty_flow.py", "tag", "add", "--run-id", runs.chatty, ""), r"Tag '' is empty")
    r = runs.cli("chatty_flow.py", "tag", "replace", "--run-id", runs.chatty)
    assert r.returncode == 2 and "Give at least one --add TAG or --remove TAG" in r.stderr
    r = run_flow("chatty_flow.py", "tag", "add", "--run-id", runs.chatty, "x", root=runs.root,
                 env={"HEADWATER_USER": "someone-else"})  # fmt: skip
    _user_error(r, r"No run found for ChattyFlow in namespace user:someone-else\. You can switch the namespace")
    _ok(run_flow("chatty_flow.py", "tag", "add", "--namespace", f"user:{USER}", "--run-id", runs.chatty, "x",
                 root=runs.root, env={"HEADWATER_USER": "someone-else"}))  # fmt: skip
    _ok(runs.cli("chatty_flow.py", "tag", "remove", "--run-id", runs.chatty, "x"))
    for args, match in [(["--all", "--my-runs"], r"--all cannot be used together with --my-runs"),
                        (["--group-by-tag", "--group-by-run"], r"--group-by-tag cannot be used with --group-by-run"),
                        (["--flat", "--group-by-run"], r"--flat cannot be used with any --group-by-\* option"),
                        (["--run-id", "1", "2"], r"either using --run-id or as an argument but not both")]:
        _user_error(runs.cli("chatty_flow.py", "tag", "list", *args), match)


def test_tag_list_layouts(runs: Runs, client) -> None:
    run = client.Run(f"ChattyFlow/{runs.chatty}")
    tags = sorted(run.tags)
    width = max(map(len, tags))
    header = ["", "System tags and tags; only tags can be modified", "-" * 56, ""]
    r = _ok(runs.cli("chatty_flow.py", "tag", "list", "--run-id", runs.chatty))
    rows = r.stdout.splitlines()
    assert rows[:4] == header and rows[-1] == ""
    n_cols = 124 // (width + 4)
    n_rows = -(-len(tags) // n_cols)
    assert len(rows) == 4 + n_rows + 1
    assert rows[4].startswith(tags[0].ljust(width) + "    " + tags[n_rows].ljust(width))  # filled top to bottom
    assert all(len(row) == n_cols * width + (n_cols - 1) * 4 for row in rows[4:-1])
    r = _ok(runs.cli("chatty_flow.py", "tag", "list", "--run-id", runs.chatty, "--hide-system-tags"))
    assert r.stdout.splitlines()[4].split() == ["first"]
    r = _ok(runs.cli("chatty_flow.py", "tag", "list", "--run-id", runs.chatty, "--flat"))
    assert r.stdout == "" and r.stderr.splitlines()[-len(tags):] == tags
    r = _ok(runs.cli("chatty_flow.py", "tag", "list", "--group-by-tag"))
    assert f"For tag first\nChattyFlow/{runs.chatty}" in r.stdout
    assert f"For tag user:{USER}\nChattyFlow/{runs.chatty}" in r.stdout
    r = _ok(runs.cli("chatty_flow.py", "--quiet", "tag", "list", "--group-by-tag", "--hide-system-tags"))
    assert r.stdout == f"user:first ; ChattyFlow/{runs.chatty}\n"
    r = _ok(runs.cli("chatty_flow.py", "--quiet", "tag", "list", "--run-id", runs.chatty))
    system = ",".join(sorted(run.system_tags))
    assert r.stdout == f"ChattyFlow/{runs.chatty} ; {system} ; first\n"


def test_tag_list_without_flags_lists_every_run(runs: Runs) -> None:
    other = run_flow("chatty_flow.py", "run", "--tag", "theirs", root=runs.root, env={"HEADWATER_USER": "bob"})
    assert other.returncode == 0, other.output
    theirs = _run_id(other)
    every = _ok(runs.cli("chatty_flow.py", "tag", "list")).stdout
    assert "theirs" in every and "user:bob" in every  # every namespace, as Metaflow
    mine = _ok(runs.cli("chatty_flow.py", "tag", "list", "--my-runs")).stdout
    assert "theirs" not in mine and f"user:{USER}" in mine
    by_run = _ok(runs.cli("chatty_flow.py", "tag", "list", "--all", "--group-by-run")).stdout
    assert f"For run ChattyFlow/{theirs}\n" in by_run and f"For run ChattyFlow/{runs.chatty}\n" in by_run
    _user_error(run_flow("plain_flow.py", "tag", "list", root=runs.root), r"the flow \w+ has never been run")


@pytest.mark.parametrize("args", [["logs"], ["logs", "show"], ["logs", "scrub"], ["dump"], ["tag"], ["tag", "add"],
                                  ["tag", "remove"], ["tag", "replace"], ["tag", "list"]])  # fmt: skip
def test_help(runs: Runs, args: list[str]) -> None:
    r = _ok(runs.cli("chatty_flow.py", *args, "--help"))
    assert "Usage:" in r.stdout
