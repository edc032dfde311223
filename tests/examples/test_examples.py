"""Every example in examples/ runs to success and leaves the results the docs describe."""

from __future__ import annotations

from pathlib import Path

import pytest
from flowrun import run_flow

EXAMPLES = Path(__file__).parents[2] / "examples"
CASES = {
    "hello.py": ("HelloFlow", []),
    "branch.py": (None, []),
    "foreach.py": (None, []),
    "nested_foreach.py": (None, []),
    "switch.py": (None, ["--mode", "thorough", "--limit", "4"]),
    "cards.py": (None, []),
    "parameters.py": (None, ["--epochs", "5", "--verbose", "True", "--colors", "cyan,magenta",
                             "--notes", str(EXAMPLES / "data" / "notes.txt")]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_example_runs(name, tmp_path, use_root):
    from headwater import Headwater

    _, args = CASES[name]
    r = run_flow(EXAMPLES / name, "run", *args, root=tmp_path / ".headwater")
    assert r.returncode == 0, r.output
    use_root(tmp_path / ".headwater")
    flows = list(Headwater())
    assert len(flows) == 1
    run = flows[0].latest_run
    assert run.successful and run.end_task is not None


def test_hello_message(tmp_path, use_root):
    from headwater import Flow

    r = run_flow(EXAMPLES / "hello.py", "run", root=tmp_path / ".headwater")
    assert "Hello, world!" in r.stdout
    use_root(tmp_path / ".headwater")
    assert Flow("HelloFlow").latest_run.data.message == "Hello, world!"
