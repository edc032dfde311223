"""The same flows run under Metaflow and headwater leave the same runs behind (read by each client).

A case is a flow file plus CLI arguments; a facet (``facets.py``) is one view of the probe
document. Every case is compared on every facet. Known headwater differences are strict
xfails whose reason starts with ``DIFF:``; deliberate ones are forgiven in
``facets.FORGIVE`` (documented in docs/compat.md).
"""

from __future__ import annotations

from typing import Any, Callable

import pytest

from compat.facets import FACETS, FORGIVE, case_facet_params, per_task
from compat.harness import FLOWS

NOTES = str(FLOWS / "notes.txt")

# case -> (flow file, flow class, CLI arguments[, environment: ENGINE_X is METAFLOW_X / HEADWATER_X])
CASES: dict[str, tuple[Any, ...]] = {
    "linear": ("linear_flow.py", "LinearFlow", ("run",)),
    "branch": ("branch_flow.py", "BranchFlow", ("run",)),
    "foreach": ("foreach_flow.py", "ForeachFlow", ("run",)),
    "switch": ("switch_flow.py", "SwitchFlow", ("run",)),
    "switch_low": ("switch_flow.py", "SwitchFlow", ("run", "--mode", "low", "--limit", "1")),
    "params_default": ("params_flow.py", "ParamsFlow", ("run",)),
    "params_given": ("params_flow.py", "ParamsFlow", (
        "run", "--who", "you", "--count", "4", "--ratio", "2.5", "--loud", "true", "--config", '{"b": [1, 2]}',
        "--seed", "7", "--fruits", "fig,kiwi,lime", "--notes", NOTES, "--tag", "given", "--tag", "second")),
    "params_env": ("params_flow.py", "ParamsFlow", ("run",), {"ENGINE_RUN_WHO": "env", "ENGINE_RUN_COUNT": "9"}),
    "foreach_too_many": ("foreach_flow.py", "ForeachFlow", ("run", "--max-num-splits", "1")),
    "switch_unmatched": ("switch_flow.py", "SwitchFlow", ("run", "--mode", "sideways", "--limit", "1")),
    "config_default": ("config_flow.py", "ConfigFlow", ("run",)),
    "config_given": ("config_flow.py", "ConfigFlow", (
        "--config-value", "cfg", '{"mode": "slow", "env": "e2", "sizes": [5, 6], "deep": {"k": "w"}}', "run")),
    "project_user": ("project_flow.py", "ProjectFlow", ("run",)),
    "project_branch": ("project_flow.py", "ProjectFlow", ("--branch", "feat", "run")),
    "project_production": ("project_flow.py", "ProjectFlow", ("--production", "run")),
    "userdeco": ("user_deco_flow.py", "UserDecoFlow", ("run",)),
    "decorated": ("decorated_flow.py", "DecoratedFlow", ("run",)),
    "failing": ("failing_flow.py", "FailingFlow", ("run",)),
    "catch_killed": ("catch_kill_flow.py", "CatchKillFlow", ("run",)),
}

# case prefix -> the headwater export it needs: skipped in a checkout that lacks it (issue 7's features).
REQUIRES = {"config": "Config", "project": "project", "userdeco": "user_step_decorator"}

KNOWN: dict[tuple[str, str], str] = {}


@pytest.mark.parametrize("case,facet", case_facet_params(CASES, KNOWN))
def test_same_run(both: Callable[..., Any], headwater_names: set[str], case: str, facet: str) -> None:
    needed = REQUIRES.get(case.split("_")[0])
    if needed and needed not in headwater_names:
        pytest.skip(f"this headwater has no {needed} yet")
    flow, flow_name, args, *env = CASES[case]
    pair = both(flow, *args, env=env[0] if env else None)
    assert pair.mf.returncode == pair.hw.returncode, (pair.mf.stderr[-2000:], pair.hw.stderr[-2000:])
    docs = pair.probe(flow_name)
    view = FACETS[facet]
    assert view(docs["headwater"], case) == view(docs["metaflow"], case)


def test_known_differences_name_real_cases() -> None:
    assert set(KNOWN) <= {(c, f) for c in CASES for f in FACETS}
    from compat.test_issue7_runs import CASES as ISSUE7_CASES  # FORGIVE serves both case tables

    assert {c for c, _ in FORGIVE} <= set(CASES) | set(ISSUE7_CASES)


@pytest.mark.parametrize("case", ["linear", "foreach"])
def test_metadata_keys(both: Callable[..., Any], case: str) -> None:
    flow, flow_name, args, *_ = CASES[case]
    docs = both(flow, *args).probe(flow_name)
    keys = {n: per_task(d, case, lambda t: sorted(t["metadata"])) for n, d in docs.items()}
    assert keys["headwater"] == keys["metaflow"]
