"""Issue 7's run-time features leave the same runs behind in both engines (every facet of each case).

Same machinery as ``test_runs.py`` (a case is a flow file plus CLI arguments, compared on every
facet of ``facets.py``), for exit hooks, ``@parallel``, ``@secrets``, the multicore helpers,
mutators and a Metaflow-style ``StepDecorator``, a class constant written in a step, a
segfaulting step, ``--with retry`` and a Config from a file.
"""

from __future__ import annotations

import json
from typing import Any, Callable

import pytest

from compat.facets import FACETS, case_facet_params
from compat.harness import FLOWS

CFG_FILE = str(FLOWS / "cfg.json")

# case -> (flow file, flow class, CLI arguments[, environment])
CASES: dict[str, tuple[Any, ...]] = {
    "exit_hook_ok": ("exit_hook_flow.py", "ExitHookFlow", ("run",)),
    "exit_hook_error": ("exit_hook_flow.py", "ExitHookFlow", ("run",), {"COMPAT_FAIL": "1"}),
    "parallel": ("parallel_flow.py", "ParallelFlow", ("run",)),
    "toolbox": ("toolbox_flow.py", "ToolboxFlow", ("run",)),
    "mutator": ("mutator_flow.py", "MutatorFlow", ("run",)),
    "constant": ("constant_flow.py", "ConstantFlow", ("run",)),
    "with_retry": ("flaky_flow.py", "FlakyFlow", ("run", "--with", "retry")),
    "config_file": ("config_flow.py", "ConfigFlow", ("--config", "cfg", CFG_FILE, "run")),
}


# (case, facet) -> "DIFF: ..." for a known difference (a strict xfail); none left. Deliberate
# differences are forgiven in facets.FORGIVE instead.
KNOWN: dict[tuple[str, str], str] = {}


def run_case(both: Callable[..., Any], case: str) -> Any:
    flow, _, args, *env = CASES[case]
    return both(flow, *args, env=env[0] if env else None)


@pytest.mark.parametrize("case,facet", case_facet_params(CASES, KNOWN))
def test_same_run(both: Callable[..., Any], case: str, facet: str) -> None:
    pair = run_case(both, case)
    assert pair.mf.returncode == pair.hw.returncode, (pair.mf.stderr[-2000:], pair.hw.stderr[-2000:])
    docs = pair.probe(CASES[case][1])
    view = FACETS[facet]
    assert view(docs["headwater"], case) == view(docs["metaflow"], case)


def test_known_differences_name_real_cases() -> None:
    assert set(KNOWN) <= {(c, f) for c in CASES for f in FACETS}


@pytest.mark.parametrize("case,expected", [
    ("exit_hook_ok", ["HOOK after_success ExitHookFlow successful=True finished=True", "HOOK no_args"]),
    ("exit_hook_error", ["HOOK after_error ExitHookFlow successful=False"]),
])
def test_exit_hooks_print_what_they_see(both: Callable[..., Any], case: str, expected: list[str]) -> None:
    pair = run_case(both, case)
    hooks = {n: [line for line in r.stdout.splitlines() if line.startswith("HOOK")] for n, r in pair.results.items()}
    assert hooks["headwater"] == hooks["metaflow"] == expected


def test_a_failing_exit_hook_is_reported_and_the_rest_run(both: Callable[..., Any]) -> None:
    pair = run_case(both, "exit_hook_ok")
    assert pair.mf.returncode == pair.hw.returncode == 0
    for res in pair.results.values():
        assert "[exit_hook] Hook 'broken' failed" in res.stdout + res.stderr, res.engine
        assert "ValueError: hook exploded" in res.stderr, res.engine


def test_a_failing_exit_hook_is_reported_on_stdout(both: Callable[..., Any]) -> None:
    for res in run_case(both, "exit_hook_ok").results.values():
        assert "[exit_hook] Hook 'broken' failed" in res.stdout, res.engine


def test_a_parallel_gang_prints_the_same_lines(both: Callable[..., Any]) -> None:
    # Which task of the gang holds them differs (facets.FORGIVE); what the gang printed does not.
    docs = run_case(both, "parallel").probe("ParallelFlow")
    lines = {n: sorted(line for t in d["run"]["steps"]["train"] for line in (t["stdout"] or "").splitlines())
             for n, d in docs.items()}
    assert lines["headwater"] == lines["metaflow"] == ["node 0 of 2", "node 1 of 2"]
    hw_tasks = sorted((t["stdout"] or "") for t in docs["headwater"]["run"]["steps"]["train"])
    assert hw_tasks == ["node 0 of 2\n", "node 1 of 2\n"]  # headwater: each node's output in its own task


def test_secret_reaches_the_step_only(both: Callable[..., Any]) -> None:
    pair = run_case(both, "toolbox")
    docs = pair.probe("ToolboxFlow")
    secret = "s3cr3t-value-42"
    for name, res in pair.results.items():
        start = docs[name]["run"]["steps"]["start"][0]["artifacts"]
        assert start["secret_seen"] is True, name
        assert all(not t["artifacts"]["secret_in_env"] for t in docs[name]["run"]["steps"]["each"]), name
        assert secret not in res.stdout + res.stderr, name
        assert secret not in json.dumps(docs[name]), name


def test_multicore_helpers_and_foreach_stack(both: Callable[..., Any]) -> None:
    docs = run_case(both, "toolbox").probe("ToolboxFlow")
    for doc in docs.values():
        start = doc["run"]["steps"]["start"][0]["artifacts"]
        assert (start["squares"], start["unordered"], start["profile_keys"]) == ([1, 4, 9, 16], [25, 36, 49], ["quiet"])
        join = doc["run"]["steps"]["join"][0]["artifacts"]
        assert join["input_order"] == [0, 1, 2, 3, 4, 5] and join["label_seen"] == "lbl"
    stacks = {n: sorted(json.dumps(t["artifacts"]["stack"]) for t in d["run"]["steps"]["each"]) for n, d in docs.items()}
    assert stacks["headwater"] == stacks["metaflow"]


def test_with_retry_after_run_retries_at_once(both: Callable[..., Any]) -> None:
    docs = run_case(both, "with_retry").probe("FlakyFlow")
    for doc in docs.values():
        flaky = doc["run"]["steps"]["flaky"][0]
        assert (flaky["current_attempt"], flaky["artifacts"]["attempt"]) == (1, 1)
        assert flaky["artifacts"]["waited_a_minute"] is False


def test_mutators_and_step_decorator_hooks(both: Callable[..., Any]) -> None:
    docs = run_case(both, "mutator").probe("MutatorFlow")
    for doc in docs.values():
        steps = {s: ts[0]["artifacts"] for s, ts in doc["run"]["steps"].items()}
        assert (steps["start"]["added"], steps["end"]["added"]) == ("start", None)
        assert steps["start"]["hook_pre"] == ["start", 0, 1, "x"] and steps["start"]["decorated"] is True


# --- a step killed by SIGSEGV (Metaflow's client cannot read such a task's lineage, so no probe) -------

@pytest.fixture(scope="module")
def crashed(both: Callable[..., Any]) -> Any:
    return both("crash_flow.py", "run")


def test_segfault_exit_code_and_failure_line(crashed: Any) -> None:
    assert crashed.mf.returncode == crashed.hw.returncode == 1
    for res in (crashed.mf, crashed.hw):
        assert "Step crash (task-id 2) failed." in res.stderr
        assert "about to crash" in res.stdout


def test_segfault_is_named(crashed: Any) -> None:
    for res in (crashed.mf, crashed.hw):
        assert "Task failed with a segmentation fault." in res.stdout, res.engine


def test_segfaulted_task_logs(each: Callable[..., Any], crashed: Any) -> None:
    results = each("crash_flow.py", "logs", "RID/crash", "--stdout", run=crashed)
    assert results["metaflow"].returncode == results["headwater"].returncode == 0
    assert results["headwater"].stdout == results["metaflow"].stdout == "about to crash\n"


@pytest.fixture(scope="module")
def crash_stderr(each: Callable[..., Any], crashed: Any) -> dict[str, str]:
    results = each("crash_flow.py", "logs", "RID/crash", "--stderr", run=crashed)
    assert results["metaflow"].returncode == results["headwater"].returncode == 0
    return {name: res.stdout for name, res in results.items()}


def test_segfaulted_task_stderr_names_the_segfault(crash_stderr: dict[str, str]) -> None:
    for name, text in crash_stderr.items():
        assert text.startswith("Task failed with a segmentation fault"), (name, text)


def test_segfaulted_task_stderr(crash_stderr: dict[str, str]) -> None:
    assert crash_stderr["headwater"] == crash_stderr["metaflow"]
