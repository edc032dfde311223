"""Issue 8, fault 9: '..' or a NUL byte in a pathspec component is an invalid
pathspec or "not found", never a ValueError traceback from the store."""

from __future__ import annotations

import pytest

from flowrun import run_flow
from headwater.client import Flow, Run, Step, Task, namespace
from headwater.exceptions import HeadwaterInvalidPathspec, HeadwaterNotFound


@pytest.fixture(scope="module")
def done(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("hostile") / ".headwater"
    r = run_flow("linear_flow.py", "run", root=root)
    assert r.returncode == 0, r.output
    run_id = next((root / "runs" / "LinearFlow").iterdir()).name
    return root, run_id


@pytest.mark.parametrize("command", ["logs", "dump"])
@pytest.mark.parametrize("spec", ["{rid}/../1", "{rid}/start/..", "../start/1", "{rid}/..", "{rid}/./1"])
def test_cli_refuses_relative_components(done, command, spec) -> None:
    root, rid = done
    r = run_flow("linear_flow.py", command, spec.format(rid=rid), root=root)
    assert r.returncode == 1, r.output
    assert "Traceback" not in r.output and "ValueError" not in r.output
    assert "Invalid pathspec" in r.output and "is a relative path, not a name" in r.output


def test_resume_refuses_a_relative_origin(done) -> None:
    root, _ = done
    r = run_flow("linear_flow.py", "resume", "--origin-run-id", "..", root=root)
    assert r.returncode == 1, r.output
    assert "Traceback" not in r.output
    assert "--origin-run-id '..' is a relative path" in r.output


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda rid: Flow(".."), r"Flow\('\.\.'\): the component '\.\.' is a relative path"),
        (lambda rid: Flow("a\x00b"), r"the component 'a\\x00b' contains a NUL byte"),
        (lambda rid: Run("LinearFlow/.."), r"the component '\.\.' is a relative path"),
        (lambda rid: Step(f"LinearFlow/{rid}/st\x00art"), r"contains a NUL byte"),
        (lambda rid: Task(f"LinearFlow/{rid}/start/.."), r"Task\('LinearFlow/\d+/start/\.\.'\)"),
    ],
)
def test_client_refuses_relative_and_nul_components(done, use_root, make, match) -> None:
    root, rid = done
    use_root(root)
    namespace(None)
    with pytest.raises(HeadwaterInvalidPathspec, match=match):
        make(rid)


@pytest.mark.parametrize("child", ["..", ".", "x\x00"])
def test_child_lookup_with_hostile_id_is_not_found(done, use_root, child) -> None:
    root, rid = done
    use_root(root)
    namespace(None)
    run = Run(f"LinearFlow/{rid}")
    with pytest.raises(HeadwaterNotFound, match="does not exist"):
        run[child]
    with pytest.raises(HeadwaterNotFound, match="does not exist"):
        run["start"][child]
    assert child not in run
