"""NBRunner: a real notebook, executed by a real Jupyter kernel (nbclient), runs flows it defines."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

from flowrun import FLOWS, USER

KERNEL = "headwater-test"

CELLS = [
    # 1: imports in their own cell (carried over into the flow's file)
    """
    import os
    from headwater import FlowSpec, NBRunner, Parameter, step
    """,
    # 2: the flow, plus a notebook-only line that must not reach the run
    """
    class NotebookFlow(FlowSpec):
        alpha = Parameter("alpha", default=1)

        @step
        def start(self):
            self.x = self.alpha * 10
            print("x is", self.x)
            self.next(self.end)

        @step
        def end(self):
            self.cwd_seen = os.getcwd()

    display("defined")
    """,
    # 3: run it (output shows inline)
    """
    run = NBRunner(NotebookFlow).nbrun(alpha=4)
    """,
    # 4: read the result
    """
    print("result", run.successful, run.data.x, run.pathspec)
    """,
    # 5: Metaflow style: flow and NBRunner in one cell, and a line using the result
    """
    class SameCellFlow(FlowSpec):
        @step
        def start(self):
            self.y = 7
            self.next(self.end)

        @step
        def end(self):
            pass

    same = NBRunner(SameCellFlow, quiet=True).nbrun()
    print("same cell", same.data.y)
    """,
    # 6: asyncio at the top level of a cell
    """
    nb = NBRunner(NotebookFlow, show_output=False)
    ex = await nb.async_run(alpha=2)
    await ex.wait()
    print("async", ex.status, ex.run.data.x, os.path.exists(nb.flow_file))
    nb.cleanup()
    print("cleaned", nb.flow_file, ex.stdout.count("x is 20"))
    """,
    # 7: a wrong parameter type fails in the cell, before any run
    """
    try:
        NBRunner(NotebookFlow).nbrun(alpha="many")
    except Exception as e:
        print("error", type(e).__name__, e)
    """,
]


@pytest.fixture(scope="session")
def kernel_dir(tmp_path_factory) -> Path:
    """A kernelspec for this interpreter, in a temp JUPYTER_PATH (nothing installed for the user)."""
    base = tmp_path_factory.mktemp("jupyter")
    spec = base / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "headwater tests", "language": "python",
    }))
    return base


def _text(cell) -> str:
    out = []
    for o in cell.get("outputs", []):
        if o.get("output_type") == "stream":
            out.append(o["text"])
        elif o.get("output_type") in ("execute_result", "display_data"):
            out.append(o.get("data", {}).get("text/plain", ""))
        elif o.get("output_type") == "error":
            out.append("ERROR " + o["ename"] + ": " + o["evalue"])
    return "".join(out)


@pytest.fixture(scope="module")
def executed(kernel_dir, tmp_path_factory):
    import nbformat
    from nbclient import NotebookClient

    work = tmp_path_factory.mktemp("notebook")
    (work / ".headwater").mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(textwrap.dedent(c).strip()) for c in CELLS]
    mp = pytest.MonkeyPatch()
    mp.setenv("JUPYTER_PATH", str(kernel_dir))
    mp.setenv("JUPYTER_PLATFORM_DIRS", "1")
    mp.setenv("JUPYTER_RUNTIME_DIR", str(kernel_dir / "runtime"))  # connection files: nothing in $HOME
    mp.setenv("IPYTHONDIR", str(kernel_dir / "ipython"))
    mp.setenv("HEADWATER_USER", USER)
    mp.delenv("HEADWATER_DATASTORE_ROOT", raising=False)  # the notebook's cwd decides the store
    mp.delenv("HEADWATER_DATASTORE_SYSROOT_LOCAL", raising=False)
    try:
        client = NotebookClient(nb, kernel_name=KERNEL, timeout=180, resources={"metadata": {"path": str(work)}})
        client.execute()
    finally:
        mp.undo()
    return nb, work


def test_nbrun_returns_the_run(executed):
    nb, work = executed
    assert _text(nb.cells[3]).startswith("result True 40 NotebookFlow/")
    pathspec = _text(nb.cells[3]).split()[-1]
    assert (work / ".headwater" / "runs" / pathspec).is_dir()  # the notebook's own store


def test_output_shows_inline(executed):
    nb, _ = executed
    out = _text(nb.cells[2])
    assert "Workflow starting" in out
    assert "x is 40" in out  # the task's print, as it ran
    assert "executing NotebookFlow" in out


def test_notebook_only_lines_stay_in_the_notebook(executed):
    nb, _ = executed
    assert "'defined'" in _text(nb.cells[1])
    assert "same cell 7" in _text(nb.cells[4])
    assert "executing SameCellFlow" not in _text(nb.cells[4])  # quiet=True hides the banner


def test_async_run_in_a_cell_and_cleanup(executed):
    nb, _ = executed
    out = _text(nb.cells[5]).splitlines()
    assert out == ["async successful 20 True", "cleaned None 1"]


def test_wrong_parameter_type_in_a_cell(executed):
    nb, work = executed
    assert _text(nb.cells[6]).strip() == \
        "error RunnerTypeError Invalid value for '--alpha': 'many' is not a valid integer."
    runs = sorted(p.name for p in (work / ".headwater" / "runs").iterdir())
    assert runs == ["NotebookFlow", "SameCellFlow"]
    assert len(list((work / ".headwater" / "runs" / "NotebookFlow").iterdir())) == 2  # nbrun + async_run


def test_nbrunner_of_a_class_from_a_file(tmp_path, use_root):
    import importlib.util

    from headwater import NBRunner

    spec = importlib.util.spec_from_file_location("linear_for_nb", FLOWS / "linear_flow.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    root = tmp_path / ".headwater"
    nb = NBRunner(mod.LinearFlow, show_output=False, base_dir=tmp_path, env={"HEADWATER_USER": USER},
                  datastore_root=str(root))
    path = Path(nb.flow_file)
    assert path.parent == tmp_path and path.name.startswith("LinearFlow_")
    source = path.read_text()
    assert source.rstrip().endswith('if __name__ == "__main__":\n    LinearFlow()')
    assert source.count("__main__") == 1  # the file's own main block is left out
    run = nb.nbrun()
    assert not path.exists()  # nbrun cleans up
    assert run.successful and run.data.z == 7
    run2 = nb.nbrun()  # the file is written again when needed
    assert run2.id != run.id and not path.exists()


def test_nbrunner_rejects_what_is_not_a_flow():
    from headwater import NBRunner
    from headwater.exceptions import RunnerError

    with pytest.raises(RunnerError, match=r"NBRunner\(\) expects a FlowSpec subclass, got 3\."):
        NBRunner(3)


def test_runnable_source_leaves_notebook_lines_out():
    from headwater.runner.notebook import _runnable

    cell = textwrap.dedent("""
        from __future__ import annotations
        import math
        SCALE = 2

        class F(FlowSpec):
            pass

        get_ipython().run_line_magic("time", "1")
        r = NBRunner(F).nbrun()
        value = r.data.x * SCALE
        print(value)
        print(SCALE)
        if __name__ == "__main__":
            F()
        """).lstrip()
    out = _runnable(cell, ["from headwater import FlowSpec"], "F")
    lines = out.splitlines()
    assert lines[:2] == ["from __future__ import annotations", "from headwater import FlowSpec"]
    kept = [line for line in lines[2:] if line.strip()]
    assert kept == ["import math", "SCALE = 2", "class F(FlowSpec):", "    pass", "print(SCALE)",
                    'if __name__ == "__main__":', "    F()"]
    assert len(lines[2:]) >= len(cell.splitlines())  # blanked, not removed: line numbers hold
