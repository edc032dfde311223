"""CLI commands scripts rely on behave alike: exit codes, ``dump``, ``logs`` and ``tag``."""

from __future__ import annotations

import pickle
import re
from typing import Any, Callable

import pytest

from compat.harness import normalize, normalize_text


@pytest.fixture(scope="module")
def linear(both: Callable[..., Any]) -> Any:
    pair = both("linear_flow.py", "run")
    assert pair.mf.returncode == pair.hw.returncode == 0, (pair.mf.stderr[-2000:], pair.hw.stderr[-2000:])
    return pair


@pytest.mark.parametrize("flow,args,code", [
    ("hello_flow.py", ("check",), 0),
    ("hello_flow.py", ("nosuch",), 2),
    ("hello_flow.py", ("run", "--nope"), 2),
    ("params_flow.py", ("run", "--count", "abc"), 2),
    ("params_flow.py", ("run", "--loud", "maybe"), 2),
    ("params_flow.py", ("run", "--config", "{bad"), 2),
    ("params_flow.py", ("run", "--notes", "/nonexistent/notes.txt"), 2),
    ("hello_flow.py", ("run", "--with", "nosuch"), 1),
])
def test_exit_codes(each: Callable[..., Any], flow: str, args: tuple[str, ...], code: int) -> None:
    results = each(flow, *args)
    assert results["metaflow"].returncode == code, results["metaflow"].stderr[-2000:]
    assert results["headwater"].returncode == code, results["headwater"].stderr[-2000:]


def test_failed_run_exit_code_and_step_failure_line(both: Callable[..., Any]) -> None:
    pair = both("failing_flow.py", "run")
    assert pair.mf.returncode == pair.hw.returncode == 1
    for res in (pair.mf, pair.hw):
        assert "Step boom (task-id 2) failed." in res.stderr


@pytest.fixture(scope="module")
def dump_files(each: Callable[..., Any], linear: Any) -> dict[str, Any]:
    results = each("linear_flow.py", "dump", "RID/start", "--file", "dump.pkl", run=linear)
    dumps = {}
    for name, res in results.items():
        assert res.returncode == 0, res.stderr[-2000:]
        with open(linear.engines[name].workdir / "dump.pkl", "rb") as f:
            dumps[name] = normalize(pickle.load(f))
    return dumps


def test_dump_file_holds_the_same_artifacts(dump_files: dict[str, Any]) -> None:
    assert list(dump_files["headwater"].values()) == list(dump_files["metaflow"].values())
    assert list(dump_files["metaflow"].values())[0]["x"] == 2


def test_dump_file_keys(dump_files: dict[str, Any]) -> None:
    assert list(dump_files["headwater"]) == list(dump_files["metaflow"]) == ["<run>/start/1"]


def test_dump_stdout(each: Callable[..., Any], linear: Any) -> None:
    results = each("linear_flow.py", "dump", "RID/start", run=linear)
    assert normalize_text(results["headwater"].stdout) == normalize_text(results["metaflow"].stdout)


@pytest.mark.parametrize("args", [
    ("RID/start",), ("RID/start/1",), ("RID/middle", "--stderr"), ("RID/middle", "--stdout"),
    ("RID/middle", "--both"), ("RID/end",),
])
def test_logs_stdout(each: Callable[..., Any], linear: Any, args: tuple[str, ...]) -> None:
    results = each("linear_flow.py", "logs", *args, run=linear)
    assert results["metaflow"].returncode == results["headwater"].returncode == 0
    assert results["headwater"].stdout == results["metaflow"].stdout


def test_logs_show_subcommand(each: Callable[..., Any], linear: Any) -> None:
    results = each("linear_flow.py", "logs", "show", "RID/start", run=linear)
    assert results["headwater"].returncode == results["metaflow"].returncode == 0
    assert results["headwater"].stdout == results["metaflow"].stdout


def test_logs_of_a_missing_step_fail(each: Callable[..., Any], linear: Any) -> None:
    results = each("linear_flow.py", "logs", "RID/nosuch", run=linear)
    assert results["metaflow"].returncode == results["headwater"].returncode == 1


@pytest.fixture(scope="module")
def tagged(both: Callable[..., Any], each: Callable[..., Any]) -> tuple[Any, list[dict[str, Any]]]:
    """A run of HelloFlow with --tag, then tag add / remove / replace applied in turn."""
    pair = both("hello_flow.py", "run", "--tag", "first")
    steps = [each("hello_flow.py", *args, run=pair) for args in [
        ("tag", "add", "--run-id", "RID", "aa", "bb"),
        ("tag", "remove", "--run-id", "RID", "bb"),
        ("tag", "replace", "--run-id", "RID", "--add", "cc", "--remove", "aa"),
        ("tag", "remove", "--run-id", "RID", "user:tester"),
    ]]
    return pair, steps


def test_tag_commands_change_the_same_tags(tagged: Any) -> None:
    pair, steps = tagged
    assert [{n: r.returncode for n, r in s.items()} for s in steps] == [
        {"metaflow": c, "headwater": c} for c in (0, 0, 0, 1)]
    docs = pair.probe("HelloFlow")
    assert docs["headwater"]["run"]["user_tags"] == docs["metaflow"]["run"]["user_tags"] == ["cc", "first"]
    assert docs["headwater"]["run"]["system_tags"] == docs["metaflow"]["run"]["system_tags"]


def test_tag_add_needs_run_id(each: Callable[..., Any], tagged: Any) -> None:
    results = each("hello_flow.py", "tag", "add", "zz")
    assert results["metaflow"].returncode == results["headwater"].returncode == 1


def test_tag_list_output(each: Callable[..., Any], tagged: Any) -> None:
    pair, _ = tagged
    results = each("hello_flow.py", "tag", "list", "--run-id", "RID", run=pair)
    assert _table(results["headwater"].stdout) == _table(results["metaflow"].stdout)
    assert results["headwater"].stdout.startswith("\nSystem tags and tags; only tags can be modified\n")


def _table(text: str) -> list[list[str]]:
    """A tag table's rows of cells: each engine's version tag differs in length, so column widths may."""
    text = re.sub(r"engine_version:\S+", "engine_version:<v>", normalize_text(text))
    return [line.split() for line in text.splitlines()]


@pytest.mark.parametrize("args", [(), ("--hide-system-tags", "--run-id", "RID"), ("--group-by-tag",)])
def test_tag_list_layouts(each: Callable[..., Any], tagged: Any, args: tuple[str, ...]) -> None:
    pair, _ = tagged
    results = each("hello_flow.py", "tag", "list", *args, run=pair)
    assert results["metaflow"].returncode == results["headwater"].returncode == 0
    assert _table(results["headwater"].stdout) == _table(results["metaflow"].stdout)


def test_tag_list_flat(each: Callable[..., Any], tagged: Any) -> None:
    pair, _ = tagged
    results = each("hello_flow.py", "tag", "list", "--flat", "--run-id", "RID", run=pair)
    tags = {name: sorted(line for line in _table(res.stderr) if "executing" not in line)  # no banner
            for name, res in results.items()}
    assert ["cc"] in tags["metaflow"]
    assert tags["headwater"] == tags["metaflow"]
