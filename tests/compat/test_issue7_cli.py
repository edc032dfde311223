"""Issue 7's commands behave alike: ``show``, ``check``, ``output-dot``, ``version``, ``tag list --flat``,
Metaflow's top-level options, ``card get/view STEP``, bare ``resume``, ``resume`` of a switch loop,
``logs --attempt N``, and the order the client iterates in."""

from __future__ import annotations

import re
from typing import Any, Callable

import pytest

from compat.conftest import sort_tasks
from compat.facets import FACETS
from compat.harness import HERE, normalize, normalize_text

TOP_LEVEL = ("--metadata=local", "--datastore=local", "--environment=local", "--no-pylint",
             "--event-logger=nullSidecarLogger", "--monitor=nullSidecarMonitor", "--quiet")


def _engine_lines(text: str) -> list[str]:
    """stderr lines minus the banner ('Metaflow 2.19.39 executing ...')."""
    return [line for line in normalize_text(text).splitlines() if " executing " not in line and line.strip()]


# --- flow commands that read only the flow file ------------------------------------------------------

def test_output_dot(each: Callable[..., Any]) -> None:
    results = each("branch_flow.py", "output-dot")
    assert results["metaflow"].returncode == results["headwater"].returncode == 0
    assert results["headwater"].stdout == results["metaflow"].stdout
    assert "start -> left;" in results["metaflow"].stdout


def test_check(each: Callable[..., Any]) -> None:
    results = each("branch_flow.py", "check")
    for res in results.values():
        assert res.returncode == 0, res.stderr[-2000:]
        assert "The graph looks good!" in res.stderr, res.engine


@pytest.fixture(scope="module")
def shown(each: Callable[..., Any]) -> dict[str, Any]:
    return each("branch_flow.py", "show")


def test_show_names_steps_and_transitions(shown: dict[str, Any]) -> None:
    for res in shown.values():
        assert res.returncode == 0
        for line in ("Step start", "    => left, right", "Step join", "    => end", "Step end"):
            assert line in res.stdout.splitlines(), (res.engine, line)


def test_show_output(shown: dict[str, Any]) -> None:
    assert shown["headwater"].stdout == shown["metaflow"].stdout
    assert _engine_lines(shown["headwater"].stderr) == _engine_lines(shown["metaflow"].stderr)


def test_version(each: Callable[..., Any]) -> None:
    results = each("hello_flow.py", "version")
    for res in results.values():
        assert res.returncode == 0 and res.stdout == ""
        assert re.fullmatch(r"\d+\.\d+\.\d+\S*", _engine_lines(res.stderr)[-1]), (res.engine, res.stderr)


# --- top-level options and tags ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def quiet_run(both: Callable[..., Any]) -> Any:
    return both("hello_flow.py", *TOP_LEVEL, "run", "--tag", "quiet")


def test_metaflow_top_level_options_are_accepted(quiet_run: Any) -> None:
    assert quiet_run.mf.returncode == quiet_run.hw.returncode == 0, (quiet_run.mf.stderr, quiet_run.hw.stderr)
    docs = quiet_run.probe("HelloFlow")
    for facet in ("run", "status", "artifacts"):
        assert FACETS[facet](docs["headwater"], "quiet") == FACETS[facet](docs["metaflow"], "quiet")
    assert "quiet" in docs["metaflow"]["run"]["user_tags"]
    for res in (quiet_run.mf, quiet_run.hw):
        assert " executing " not in res.stderr, res.engine


def test_quiet_keeps_the_console_lines(quiet_run: Any) -> None:
    for res in (quiet_run.mf, quiet_run.hw):
        assert "Done!" in res.stdout, res.engine


def test_tag_list_flat(each: Callable[..., Any], quiet_run: Any) -> None:
    results = each("hello_flow.py", "tag", "list", "--flat", "--run-id", "RID", run=quiet_run)
    assert results["metaflow"].returncode == results["headwater"].returncode == 0
    tags = {n: sorted(normalize(_engine_lines(r.stderr))) for n, r in results.items()}
    assert tags["headwater"] == tags["metaflow"]
    assert "quiet" in tags["metaflow"] and "user:tester" in tags["metaflow"]


# --- cards by step ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def card_run(both: Callable[..., Any]) -> Any:
    pair = both("card_flow.py", "run")
    assert pair.mf.returncode == pair.hw.returncode == 0
    return pair


def test_card_get_step_by_id_writes_the_card(each: Callable[..., Any], card_run: Any) -> None:
    results = each("card_flow.py", "card", "get", "RID/start", "--id", "notes", "notes-card.html", run=card_run)
    for name, res in results.items():
        assert res.returncode == 0, res.stderr[-2000:]
        html = (card_run.engines[name].workdir / "notes-card.html").read_text()
        assert "<html" in html.lower(), name


def test_card_get_step_with_two_cards(each: Callable[..., Any], card_run: Any) -> None:
    results = each("card_flow.py", "card", "get", "RID/start", run=card_run)
    assert results["metaflow"].returncode == results["headwater"].returncode == 0
    assert results["headwater"].stdout == results["metaflow"].stdout == ""
    for res in results.values():
        assert "Found 2 card matching for your query..." in res.stderr, res.engine
        assert re.search(r"card get \d+/start/1 --hash [0-9a-f]{5}\n", res.stderr), res.engine


def test_card_view_step(each: Callable[..., Any], card_run: Any) -> None:
    results = each("card_flow.py", "card", "view", "RID/start", "--id", "notes", run=card_run)
    assert results["metaflow"].returncode == results["headwater"].returncode == 0


# --- logs of one attempt ----------------------------------------------------------------------------

@pytest.mark.parametrize("attempt", ["0", "1"])
def test_logs_attempt(both: Callable[..., Any], each: Callable[..., Any], attempt: str) -> None:
    flaky = both("flaky_flow.py", "run", "--with", "retry")
    results = each("flaky_flow.py", "logs", "RID/flaky", "--stdout", "--attempt", attempt, run=flaky)
    assert results["metaflow"].returncode == results["headwater"].returncode == 0
    assert results["headwater"].stdout == results["metaflow"].stdout == f"attempt {attempt}\n"


# --- resume -----------------------------------------------------------------------------------------

def _resumed(each_results: dict[str, Any], engines: dict[str, Any], flow_name: str) -> dict[str, Any]:
    docs = {}
    for name, res in each_results.items():
        assert res.returncode == 0, res.stderr[-3000:]
        docs[name] = sort_tasks(normalize(engines[name].probe(flow_name, res.run_id)))
    return docs


@pytest.fixture(scope="module")
def bare_resume(both: Callable[..., Any], each: Callable[..., Any]) -> dict[str, Any]:
    """``resume`` with no step and no origin: LinearFlow's latest run (successful) is cloned whole."""
    pair = both("linear_flow.py", "run")
    assert pair.mf.returncode == pair.hw.returncode == 0
    return _resumed(each("linear_flow.py", "resume"), pair.engines, "LinearFlow")


@pytest.mark.parametrize("facet", list(FACETS))
def test_bare_resume_of_a_successful_run(bare_resume: dict[str, Any], facet: str) -> None:
    assert FACETS[facet](bare_resume["headwater"], "bare") == FACETS[facet](bare_resume["metaflow"], "bare")


@pytest.fixture(scope="module")
def loop_resume(both: Callable[..., Any], each: Callable[..., Any]) -> dict[str, Any]:
    """``resume loop`` of SwitchFlow (--mode low --limit 1): the self-looping switch step runs again."""
    pair = both("switch_flow.py", "run", "--mode", "low", "--limit", "1")
    assert pair.mf.returncode == pair.hw.returncode == 0
    return _resumed(each("switch_flow.py", "resume", "loop", "--origin-run-id", "RID", run=pair), pair.engines,
                    "SwitchFlow")


@pytest.mark.parametrize("facet", list(FACETS))
def test_resume_of_a_switch_loop(loop_resume: dict[str, Any], facet: str) -> None:
    assert FACETS[facet](loop_resume["headwater"], "loop") == FACETS[facet](loop_resume["metaflow"], "loop")


# --- the order the client iterates in ---------------------------------------------------------------

def test_iteration_order(both: Callable[..., Any]) -> None:
    pair = both("foreach_flow.py", "run")
    got = {name: eng.script(HERE / "order_probe.py", "ForeachFlow", pair.results[name].run_id, "inner")
           for name, eng in pair.engines.items()}
    assert got["headwater"] == got["metaflow"]
    assert got["metaflow"]["runs_newest_first"] and got["metaflow"]["latest_first"]
