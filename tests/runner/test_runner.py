"""Runner / ExecutingRun: real flows in real subprocesses, checked through the client."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

import pytest

from flowrun import FLOWS, USER

from headwater import Runner
from headwater.exceptions import ParameterError, RunnerError

ENV = {"HEADWATER_USER": USER}


def _runner(flow: str, root: Path, **kw) -> Runner:
    kw.setdefault("show_output", False)
    return Runner(FLOWS / flow, env={**ENV, **kw.pop("env", {})}, datastore_root=str(root), **kw)


def _run_ids(root: Path, flow: str) -> list[str]:
    d = root / "runs" / flow
    return sorted(p.name for p in d.iterdir()) if d.is_dir() else []


# ---- one linear run, checked many ways ---------------------------------------------------------------

@pytest.fixture(scope="module")
def linear(tmp_path_factory):
    root = tmp_path_factory.mktemp("linear") / ".headwater"
    with _runner("linear_flow.py", root) as runner:
        result = runner.run(tags=["from-runner", "t2"], max_workers=2)
        tmpdir = runner._tmpdir
    return result, root, tmpdir


def test_run_blocks_until_the_run_ended(linear):
    result, _, _ = linear
    assert result.status == "successful"
    assert result.returncode == 0
    assert result.run.successful and result.run.finished


def test_run_reads_the_subprocess_store(linear):
    result, root, _ = linear
    run = result.run
    assert run.pathspec == f"LinearFlow/{result.run_id}"
    assert _run_ids(root, "LinearFlow") == [result.run_id]
    assert run.data.z == 7
    assert run["middle"].task.data.y == 6
    assert {"from-runner", "t2"} <= run.tags


def test_output_is_captured(linear):
    result, _, _ = linear
    assert "hello from start" in result.stdout
    assert f"Workflow starting (run-id {result.run_id})" in result.stdout
    assert "executing LinearFlow for user:" in result.stderr


def test_context_manager_removes_temp_files_and_keeps_output(linear):
    result, _, tmpdir = linear
    assert tmpdir is not None and not os.path.exists(tmpdir)
    assert "hello from start" in result.stdout  # kept in memory by cleanup()
    assert result.run_id is not None


def test_command_is_the_cli(linear):
    result, root, _ = linear
    argv = result.command
    assert argv[1] == str(FLOWS / "linear_flow.py")
    assert argv[2:4] == ["--datastore-root", str(root)]
    assert argv[4:10] == ["run", "--tag", "from-runner", "--tag", "t2", "--max-workers"]
    assert "--runner-attribute-file" in argv


# ---- parameters ---------------------------------------------------------------------------------

def test_parameters_of_every_type(tmp_path):
    root = tmp_path / ".headwater"
    notes = tmp_path / "notes.txt"
    notes.write_text("some notes")
    with _runner("params_flow.py", root) as runner:
        result = runner.run(who="bob", count=3, ratio=0.25, loud=True, config={"b": [1, 2]}, seed=7,
                            fruits=["fig", "kiwi"], notes=notes)
    assert result.status == "successful", result.stderr
    assert result.run.data.seen == {"who": "bob", "count": 3, "ratio": 0.25, "loud": True, "config": {"b": [1, 2]},
                                    "seed": 7, "fruits": ["fig", "kiwi"], "notes": "some notes"}
    assert result.run.data.greeting == "HELLO bob"


def test_dashed_parameter_name_and_required(tmp_path):
    root = tmp_path / ".headwater"
    with _runner("required_flow.py", root) as runner:
        result = runner.run(alpha=1.5, label_text="dashed")
        assert result.status == "successful", result.stderr
        assert result.run.data.seen == (1.5, "dashed")
        with pytest.raises(ParameterError, match=r"^Missing required parameter '--alpha'\."):
            runner.run(label_text="x")
    assert _run_ids(root, "RequiredFlow") == [result.run_id]


@pytest.mark.parametrize("kwargs, message", [
    ({"count": "abc"}, "Invalid value for '--count': 'abc' is not a valid integer."),
    ({"ratio": "half"}, "Invalid value for '--ratio': 'half' is not a valid float."),
    ({"count": 2.5}, "Invalid value for '--count': '2.5' is not a valid integer."),
    ({"config": "{bad"}, "Invalid value for '--config': '{bad' is not valid JSON"),
    ({"loud": "maybe"}, "Invalid value for '--loud': 'maybe' is not a valid boolean."),
    ({"max_workers": "many"}, "Invalid value for '--max-workers': 'many' is not a valid integer."),
])
def test_wrong_type_fails_before_the_run_with_the_cli_message(tmp_path, kwargs, message):
    from flowrun import run_flow

    root = tmp_path / ".headwater"
    runner = _runner("params_flow.py", root)
    with pytest.raises(ParameterError, match="^" + re.escape(message)) as err:
        runner.run(**kwargs)
    assert not root.exists()  # nothing ran: no store, no run
    assert runner._executions == [] and runner._tmpdir is None
    # the CLI says the very same thing
    flag, value = next(iter(kwargs.items()))
    cli_flag = "--" + flag.replace("_", "-")
    cli = run_flow("params_flow.py", "run", cli_flag, str(value), root=root)
    assert cli.returncode == 2
    assert f"Error: {err.value.message}" in cli.stderr


def test_unknown_parameter_lists_the_valid_ones(tmp_path):
    runner = _runner("params_flow.py", tmp_path / ".headwater")
    with pytest.raises(ParameterError, match=r"Unknown argument 'cont' for run\(\) of ParamsFlow\.\n"
                                             r"Hint: Did you mean 'count'\? Valid arguments are run options: "
                                             r"decospecs, max_log_size, max_num_splits, max_workers, run_id_file, tags, user_namespace; "
                                             r"flow parameters: config, count, "
                                             r"fruits, loud, notes, ratio, seed, who\."):
        runner.run(cont=3)
    with pytest.raises(ParameterError, match=r"(?s)Unknown argument 'alpha' for resume\(\) of ParamsFlow\..*"
                                             r"resume options: decospecs, max_log_size, max_num_splits, max_workers, "
                                             r"origin_run_id, run_id_file, step_to_rerun, tags\."):
        runner.resume(alpha=1)
    with pytest.raises(ParameterError, match=r"resume\(\) of ParamsFlow takes no flow parameters, got 'count'\."):
        runner.resume(count=1)
    assert not (tmp_path / ".headwater").exists()


def test_unknown_top_level_option():
    with pytest.raises(RunnerError, match=r"Unknown argument 'metdata' for Runner\(\)\.\n"
                                          r"Hint: Did you mean 'metadata'\? Valid arguments are top-level options: "
                                          r"config, config_value, datastore, datastore_root, decospecs, environment, event_logger, "
                                          r"metadata, monitor, package_suffixes, pylint, quiet\."):
        Runner(FLOWS / "linear_flow.py", metdata="local")
    with pytest.raises(RunnerError, match=r"Did you mean 'quiet'\?"):
        Runner(FLOWS / "linear_flow.py", quite=True)


def test_missing_flow_file(tmp_path):
    with pytest.raises(RunnerError, match=r"The flow file '.*nope\.py' does not exist\."):
        Runner("nope.py", cwd=tmp_path)


def test_flow_file_without_a_flow(tmp_path):
    f = tmp_path / "empty.py"
    f.write_text("x = 1\n")
    with pytest.raises(RunnerError, match=r"defines no FlowSpec subclass"):
        Runner(f, env=ENV, datastore_root=str(tmp_path / ".headwater")).run()


def test_flow_module_imported_once_without_its_main_block():
    from headwater.runner.flowfile import load_flow_class

    first = load_flow_class(str(FLOWS / "linear_flow.py"))
    assert first.__name__ == "LinearFlow"
    assert load_flow_class(str(FLOWS / "linear_flow.py")) is first


# ---- failures, top-level options, store resolution -------------------------------------------------

def test_failing_flow_gives_failed_status_not_an_exception(tmp_path):
    root = tmp_path / ".headwater"
    with _runner("failing_flow.py", root) as runner:
        result = runner.run()
    assert result.status == "failed"
    assert result.returncode == 1
    assert "boom in task 2" in result.stdout + result.stderr
    assert "Step failure: Step work" in result.stderr
    assert result.run is not None and not result.run.successful
    assert not result.run.finished and result.run.status == "failed"  # Metaflow: finished = end task finished


def test_invalid_graph_never_records_a_run(tmp_path):
    root = tmp_path / ".headwater"
    with _runner("bad_graph_flow.py", root) as runner:
        result = runner.run()
    assert result.status == "failed" and result.returncode != 0
    assert result.run_id is None and result.run is None
    assert "Traceback" not in result.stderr and result.stderr.strip()


def test_top_level_options(tmp_path):
    root = tmp_path / ".headwater"
    with _runner("linear_flow.py", root, quiet=True, decospecs=["retry:times=1"]) as runner:
        result = runner.run()
    assert result.status == "successful", result.stderr
    assert "executing LinearFlow" not in result.stderr  # --quiet hides the banner only, as in Metaflow:
    assert "Workflow starting" in result.stdout and "Done!" in result.stdout  # the console lines stay
    assert "hello from start" in result.stdout


def test_config_options(tmp_path):
    root = tmp_path / ".headwater"
    kv = tmp_path / "kv.txt"
    kv.write_text("k=v\n")
    cfg = {"retries": 0, "greeting": "from runner", "mode": "turbo", "train": {"lr": 1}}
    with _runner("config_flow.py", root, config_value=[("cfg", cfg)], config={"kv": kv}) as runner:
        result = runner.run()
    assert result.status == "successful", result.stderr
    seen = result.run["start"].task.data.seen
    assert (seen["greeting"], seen["kv"]) == ("from runner", {"k": "v"})
    assert result.run["fast"].task.data.path == "fast"


def test_root_is_resolved_from_cwd_and_passed_explicitly(tmp_path, monkeypatch):
    monkeypatch.delenv("HEADWATER_DATASTORE_ROOT", raising=False)
    monkeypatch.delenv("HEADWATER_DATASTORE_SYSROOT_LOCAL", raising=False)
    project = tmp_path / "project"
    (project / ".headwater").mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the caller's cwd has nothing to do with the run's store
    with Runner(FLOWS / "linear_flow.py", show_output=False, env=ENV, cwd=project) as runner:
        assert runner.datastore_root == str(project / ".headwater")
        assert runner.env["HEADWATER_DATASTORE_ROOT"] == str(project / ".headwater")
        result = runner.run()
    assert result.status == "successful", result.stderr
    assert _run_ids(project / ".headwater", "LinearFlow") == [result.run_id]
    assert result.run.data.z == 7
    assert not (elsewhere / ".headwater").exists()


def test_show_output_echoes_lines(tmp_path, capfd):
    root = tmp_path / ".headwater"
    with _runner("linear_flow.py", root, show_output=True) as runner:
        result = runner.run()
    out, err = capfd.readouterr()
    assert "hello from start" in out and "executing LinearFlow" in err
    assert out == result.stdout and err == result.stderr
    with _runner("linear_flow.py", root, show_output=False) as runner:
        runner.run()
    assert capfd.readouterr() == ("", "")


def test_option_tables_match_the_cli():
    from headwater.cli.flow_cli import build_cli
    from headwater.runner.flowfile import load_flow_class
    from headwater.runner.options import COMMANDS, TOP_LEVEL

    cli = build_cli(load_flow_class(str(FLOWS / "linear_flow.py")))
    top = {p.name: p for p in cli.params if p.name not in ("version", "help")}
    assert set(top) == set(TOP_LEVEL)
    for name, opt in TOP_LEVEL.items():
        assert opt.flag == top[name].opts[0]
        assert opt.off_flag == (top[name].secondary_opts or [None])[0]
        assert (opt.kind in ("multiple", "pairs")) == bool(getattr(top[name], "multiple", False))
        assert (opt.kind == "pairs") == (top[name].nargs == 2)
    for command, options in COMMANDS.items():
        params = {p.name: p for p in cli.commands[command].params if p.name not in ("runner_attribute_file", "help")}
        assert set(params) == set(options), command
        for name, opt in options.items():
            p = params[name]
            assert opt.flag == (p.opts[0] if opt.kind != "argument" else name.upper())
            assert (opt.kind == "multiple") == bool(getattr(p, "multiple", False))


# ---- resume ---------------------------------------------------------------------------------------

def _effects(tmp_path: Path) -> list[str]:
    p = tmp_path / "side.txt"
    lines = p.read_text().splitlines() if p.exists() else []
    p.unlink(missing_ok=True)
    return lines


def test_resume(tmp_path):
    root = tmp_path / ".headwater"
    fail = tmp_path / "fail.marker"
    fail.touch()
    env = {"HW_SIDE_EFFECTS": str(tmp_path / "side.txt"), "HW_FAIL_MARKER": str(fail)}
    with _runner("resume_flow.py", root, env=env) as runner:
        first = runner.run(size=4)
        assert first.status == "failed"
        assert "after fails while the marker exists" in first.stdout + first.stderr
        _effects(tmp_path)
        fail.unlink()
        resumed = runner.resume(origin_run_id=first.run_id, tags=["resumed"])
        assert resumed.status == "successful", resumed.stderr
        assert _effects(tmp_path) == ["after", "loop 0", "loop 1", "end"]
        assert resumed.run_id != first.run_id
        assert resumed.run.data.total == 0 + 1 + 4 + 9
        assert resumed.run["after"].task.data.origin_seen == first.run_id
        assert "resumed" in resumed.run.tags
        again = runner.resume(step_to_rerun="join")  # default origin: the latest run
        assert again.status == "successful", again.stderr
        assert _effects(tmp_path) == ["join", "after", "loop 0", "loop 1", "end"]
        assert again.run["join"].task.data.total == 14


# ---- asyncio ----------------------------------------------------------------------------------------

def test_async_run_wait_and_stream_log(tmp_path):
    root = tmp_path / ".headwater"

    async def go():
        async with _runner("chatty_flow.py", root) as runner:
            result = await runner.async_run()
            assert result.run_id is not None
            assert result.run.pathspec == f"ChattyFlow/{result.run_id}"  # recorded already
            lines = [(pos, line) async for pos, line in result.stream_log("stdout")]
            assert result.status == "successful"  # the stream ends with the run
            assert (await result.wait()) is result
            # resume a stream from a position it gave
            pos = lines[1][0]
            rest = [line async for _, line in result.stream_log("stdout", position=pos)]
            err = [line async for _, line in result.stream_log("stderr")]
            return result, lines, rest, err

    result, lines, rest, err = asyncio.run(go())
    text = [line for _, line in lines]
    assert text == result.stdout.splitlines()
    assert rest == text[2:]
    assert any("item b" in line for line in text)
    assert any("start err" in line for line in err)
    assert result.run.data.seen == ["a", "b", "c"]
    assert result.returncode == 0


def test_async_wait_timeout_stops_the_run(tmp_path):
    root = tmp_path / ".headwater"

    async def go():
        runner = _runner("sleepy_flow.py", root)
        result = await runner.async_run()
        assert result.status == "running"
        assert result.run is not None and not result.run.finished
        await result.wait(timeout=1.5, stream="stdout")
        return runner, result

    runner, result = asyncio.run(go())
    assert result.status == "timeout"
    assert result.returncode is not None
    assert "napping" in result.stdout
    assert result.run.status == "failed"  # the run recorded its end: stopped like Ctrl-C
    runner.cleanup()
    assert runner._tmpdir is None


def test_async_run_of_a_run_that_never_starts(tmp_path):
    async def go():
        with _runner("bad_graph_flow.py", tmp_path / ".headwater") as runner:
            result = await runner.async_run()
            await result.wait()
            return result

    result = asyncio.run(go())
    assert result.status == "failed" and result.run is None


# ---- options flow decorators add ------------------------------------------------------------------


def test_project_options_as_runner_keywords(tmp_path):
    root = tmp_path / ".headwater"
    with _runner("project_flow.py", root, branch="feature") as runner:
        result = runner.run(max_log_size=5)
        assert result.status == "successful", result.stderr
        assert result.run.data.fields["branch_name"] == "test.feature"
    with _runner("project_flow.py", root, production=True) as runner:
        assert runner.run().run.data.fields["branch_name"] == "prod"


def test_unknown_keyword_lists_the_flow_decorator_options():
    with pytest.raises(RunnerError, match=r"Unknown argument 'brnach' for Runner\(\)\.\nHint: Did you mean 'branch'\? "
                                          r".*; flow decorator options: branch, production\."):
        Runner(FLOWS / "project_flow.py", brnach="x")
    with pytest.raises(RunnerError, match=r"Runner\(production=\.\.\.\) takes True or False, got 'yes'\."):
        Runner(FLOWS / "project_flow.py", production="yes")
