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

from compat.facets import FACETS
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
    "crash": ("crash_flow.py", "CrashFlow", ("run",)),
    "with_retry": ("flaky_flow.py", "FlakyFlow", ("run", "--with", "retry")),
    "config_file": ("config_flow.py", "ConfigFlow", ("--config", "cfg", CFG_FILE, "run")),
}

KNOWN: dict[tuple[str, str], str] = {}


def _params() -> list[Any]:
    out = []
    for case in CASES:
        for facet in FACETS:
            reason = KNOWN.get((case, facet))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            out.append(pytest.param(case, facet, marks=marks, id=f"{case}-{facet}"))
    return out


def run_case(both: Callable[..., Any], case: str) -> Any:
    flow, _, args, *env = CASES[case]
    return both(flow, *args, env=env[0] if env else None)


@pytest.mark.parametrize("case,facet", _params())
def test_same_run(both: Callable[..., Any], case: str, facet: str) -> None:
    pair = run_case(both, case)
    assert pair.mf.returncode == pair.hw.returncode, (pair.mf.stderr[-2000:], pair.hw.stderr[-2000:])
    docs = pair.probe(CASES[case][1])
    view = FACETS[facet]
    assert view(docs["headwater"], case) == view(docs["metaflow"], case)


def test_known_differences_name_real_cases() -> None:
    assert set(KNOWN) <= {(c, f) for c in CASES for f in FACETS}
