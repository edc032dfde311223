"""Issue 8, fault 9: ``--run-id-file`` (and ``--runner-attribute-file``) paths are
checked before the run starts: a directory, an unwritable parent or a path inside
the datastore is refused with a clear error and no run; a write that still fails
(a full device) ends the run as failed, never as a killed run with a traceback."""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from flowrun import USER, run_flow
from headwater.cli.main import cli


def _runs(root) -> list[str]:
    d = root / "runs" / "LinearFlow"
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


@pytest.mark.parametrize("option", ["--run-id-file", "--runner-attribute-file"])
@pytest.mark.parametrize(
    ("where", "match"),
    [
        (lambda tmp: tmp / ".headwater" / "index.sqlite", r"is inside the datastore .*: writing it would damage"),
        (lambda tmp: tmp / "x" / ".." / ".headwater" / "runs" / "id", r"is inside the datastore"),
        (lambda tmp: tmp, r"is a directory"),
        (lambda tmp: tmp / "afile" / "id", r"cannot be written: Not a directory"),
    ],
)
def test_bad_paths_are_refused_before_the_run(tmp_path, option, where, match) -> None:
    root = tmp_path / ".headwater"
    assert run_flow("linear_flow.py", "run", root=root).returncode == 0  # the index exists
    (tmp_path / "afile").write_text("a file, not a directory")
    (tmp_path / "x").mkdir()
    before = _runs(root)
    r = run_flow("linear_flow.py", "run", option, str(where(tmp_path)), root=root)
    assert r.returncode == 1, r.output
    assert "Cannot write the run id file" in r.output and "Traceback" not in r.output, r.output
    assert __import__("re").search(match, r.output), r.output
    assert _runs(root) == before  # refused before the run record
    listed = CliRunner().invoke(cli, ["runs"], env={"HEADWATER_DATASTORE_ROOT": str(root), "HEADWATER_USER": USER})
    assert listed.exit_code == 0, listed.output  # the index is intact


def test_missing_directories_are_created(tmp_path) -> None:
    idf = tmp_path / "new" / "dir" / "rid"
    r = run_flow("linear_flow.py", "run", "--run-id-file", str(idf), root=tmp_path / ".headwater")
    assert r.returncode == 0, r.output
    assert idf.read_text() == _runs(tmp_path / ".headwater")[0]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_device_fails_the_run_cleanly(tmp_path, use_root) -> None:
    from headwater import Flow

    root = tmp_path / ".headwater"
    r = run_flow("linear_flow.py", "run", "--run-id-file", "/dev/full", root=root)
    assert r.returncode == 1, r.output
    assert "Traceback" not in r.output
    assert "--run-id-file '/dev/full' cannot be written: no space left on the device" in r.output
    use_root(root)
    run = Flow("LinearFlow").latest_run
    assert run.status == "failed" and not run.successful  # ended as failed, not shown as killed
    assert not (tmp_path / "dev").exists()
