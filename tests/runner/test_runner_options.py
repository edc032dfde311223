"""Runner: every run option and top-level option of the CLI, and Metaflow's error types."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowrun import FLOWS, USER

from headwater import Runner
from headwater.exceptions import FlowFileNotFound, ParameterError, RunnerError, RunnerTypeError, RunnerValueError

ENV = {"HEADWATER_USER": USER}
RETRY = "retry:minutes_between_retries=0"


def _runner(flow: str, root: Path, **kw) -> Runner:
    kw.setdefault("show_output", False)
    return Runner(FLOWS / flow, env={**ENV, **kw.pop("env", {})}, datastore_root=str(root), **kw)


def test_run_options_and_run_id_file(tmp_path: Path) -> None:
    root = tmp_path / ".headwater"
    with _runner("cli_options_flow.py", root, env={"HW_FLAKY": "1"}, cwd=tmp_path, metadata="local",
                 datastore="local", environment="local", event_logger="nullSidecarLogger",
                 monitor="nullSidecarMonitor", pylint=False, package_suffixes=".py") as runner:  # fmt: skip
        result = runner.run(run_id_file="ids/run.txt", tags=["a", "b"], max_workers=1, max_num_splits=3,
                            decospecs=[RETRY])  # fmt: skip
        assert result.status == "successful", result.stderr
        assert (tmp_path / "ids" / "run.txt").read_text() == result.run_id  # relative to cwd, kept after cleanup
        assert result.run["flaky"].task.data.attempts == 1  # decospecs= is run --with
        assert {"a", "b"} <= result.run.user_tags
        argv = result.command
        assert argv[argv.index("run"):argv.index("--runner-attribute-file")] == [
            "run", "--run-id-file", "ids/run.txt", "--tag", "a", "--tag", "b", "--max-workers", "1",
            "--max-num-splits", "3", "--with", RETRY]  # fmt: skip
        assert argv[2:argv.index("run")] == [
            "--datastore-root", str(root), "--metadata", "local", "--datastore", "local", "--environment", "local",
            "--event-logger", "nullSidecarLogger", "--monitor", "nullSidecarMonitor", "--no-pylint",
            "--package-suffixes", ".py"]  # fmt: skip
        too_many = runner.run(max_num_splits=2)
        assert too_many.status == "failed" and "max-num-splits" in too_many.stderr.replace("_", "-")
        resumed = runner.resume(origin_run_id=too_many.run_id, decospecs=[RETRY], run_id_file=str(tmp_path / "r"))
        assert resumed.status == "successful", resumed.stderr
        assert (tmp_path / "r").read_text() == resumed.run_id
        assert resumed.run["flaky"].task.data.attempts == 1
        global_ns = runner.run(user_namespace="", decospecs=[RETRY])  # run --namespace=
        assert global_ns.status == "successful" and global_ns.run["start"].task.data.namespace_seen is None
    assert (tmp_path / "ids" / "run.txt").exists()


@pytest.mark.parametrize("top, error, message", [
    ({"datastore": "gs"}, RunnerValueError,
     r"^Runner\(datastore='gs'\): --datastore=gs is not supported yet by headwater \(supported: local, s3\)\.\n"
     r"Hint: Leave out --datastore or pass --datastore=local\.$"),
    ({"datastore": "s3"}, RunnerValueError, r"^--datastore=s3 does not match the datastore root '/.*'\.\n"
                                            r"Hint: Leave out --datastore \(the root chooses the store\)"),
    ({"metadata": "nope"}, RunnerValueError, r"--metadata=nope is not a valid value \(Metaflow knows: local, "
                                             r"service, spin; headwater supports: local\)"),
    ({"quiet": "yes"}, RunnerTypeError, r"^Runner\(quiet=\.\.\.\) takes True or False, got 'yes'\."),
    ({"datastore": 3}, RunnerTypeError, r"^Runner\(datastore=\.\.\.\) takes a string, got 3\."),
    ({"quite": True}, RunnerValueError, r"^Unknown argument 'quite' for Runner\(\)\.\nHint: Did you mean 'quiet'"),
    ({"decospecs": "retry"}, RunnerTypeError,
     r"^Runner\(decospecs=\.\.\.\) takes a list of strings, got 'retry'\.\nHint: Pass a list, e\.g\. "
     r"Runner\(decospecs=\['retry'\]\)\.$"),
])
def test_top_level_errors_are_value_or_type_errors(tmp_path: Path, top: dict, error: type, message: str) -> None:
    builtin = TypeError if error is RunnerTypeError else ValueError
    with pytest.raises(builtin, match=message) as err:
        _runner("cli_options_flow.py", tmp_path / ".headwater", **top)
    assert isinstance(err.value, error) and isinstance(err.value, RunnerError)


@pytest.mark.parametrize("call, kwargs, builtin, message", [
    ("run", {"cont": 3}, ValueError, r"^Unknown argument 'cont' for run\(\) of ParamsFlow\.\nHint: Did you mean "
                                     r"'count'\?"),
    ("run", {"count": "abc"}, TypeError, r"^Invalid value for '--count': 'abc' is not a valid integer\.$"),
    ("run", {"max_workers": "many"}, TypeError, r"^Invalid value for '--max-workers': 'many' is not a valid integer"),
    ("run", {"fruits": {"a": 1}}, TypeError, r"^Invalid value for '--fruits'"),
    ("run", {"tags": "x"}, TypeError, r"^run\(tags=\.\.\.\) takes a list of strings, got 'x'\.\nHint: Pass a "
                                      r"list, e\.g\. run\(tags=\['x'\]\)\.$"),
    ("resume", {"decospecs": "retry"}, TypeError, r"^resume\(decospecs=\.\.\.\) takes a list of strings"),
    ("resume", {"count": 1}, ValueError, r"^resume\(\) of ParamsFlow takes no flow parameters, got 'count'\."),
    ("run", {"runner_attribute_file": "x"}, ValueError,
     r"(?s)Unknown argument 'runner_attribute_file'.*The Runner passes --runner-attribute-file itself"),
])
def test_run_errors_are_value_or_type_errors(tmp_path: Path, call: str, kwargs: dict, builtin: type,
                                             message: str) -> None:  # fmt: skip
    runner = _runner("params_flow.py", tmp_path / ".headwater")
    with pytest.raises(builtin, match=message) as err:
        getattr(runner, call)(**kwargs)
    assert isinstance(err.value, ParameterError) and isinstance(err.value, RunnerError)
    assert not (tmp_path / ".headwater").exists()


def test_missing_required_parameter_and_flow_file(tmp_path: Path) -> None:
    runner = _runner("required_flow.py", tmp_path / ".headwater")
    with pytest.raises(ValueError, match=r"^Missing required parameter '--alpha'\."):
        runner.run(label_text="x")
    with pytest.raises(FileNotFoundError, match=r"The flow file '.*nope\.py' does not exist\.") as err:
        Runner("nope.py", cwd=tmp_path)
    assert isinstance(err.value, FlowFileNotFound) and isinstance(err.value, RunnerError)
